"""The book's structure: every chapter is listed, stored executed, opens with the Colab cell for
this repository, shows a figure and ends with exercises whose solutions are folded."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return {chapter["file"] for part in toc["parts"] for chapter in part["chapters"]}


def load(path):
    return json.loads(path.read_text())


def test_every_chapter_is_in_the_table_of_contents():
    assert CHAPTERS, "no chapters found"
    listed = toc_files()
    for path in CHAPTERS:
        assert f"book/{path.stem}" in listed, f"{path.name} is missing from _toc.yml"


def test_repository_and_colab_settings():
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert CONFIG["repository"]["branch"] == "main"
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["repository"]["url"] in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_opens_with_the_colab_cell_for_this_repository(path):
    cells = load(path)["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(
        cells[0]["source"]
    ).startswith("# ")
    first_code = next(c for c in cells if c["cell_type"] == "code")
    source = "".join(first_code["source"])
    assert 'if "google.colab" in sys.modules:' in source
    assert f"git+{CONFIG['repository']['url']}" in source
    assert "requirements.txt" not in source  # it would break Colab's own packages
    mujoco = re.search(r'"(mujoco[^"]*)"', (ROOT / "pyproject.toml").read_text()).group(
        1
    )
    assert f'"{mujoco}"' in source, (
        f"the Colab cell should install {mujoco}, as pyproject.toml asks"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_is_stored_executed_with_a_figure_and_no_errors(path):
    code = [
        c
        for c in load(path)["cells"]
        if c["cell_type"] == "code" and "".join(c["source"]).strip()
    ]
    assert all(c["execution_count"] is not None for c in code), (
        "unexecuted cells: run tools/run_notebooks.py"
    )
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], (
        "stderr output would fail nbval"
    )
    assert any("image/png" in o.get("data", {}) for o in outputs), (
        "every chapter shows a figure"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_ends_with_exercises_and_folded_solutions(path):
    markdown = "\n".join(
        "".join(c["source"])
        for c in load(path)["cells"]
        if c["cell_type"] == "markdown"
    )
    assert "## Exercises" in markdown
    assert re.search(r":class: dropdown", markdown), "solutions are folded in dropdowns"
    assert "$" in markdown, "math is written for MathJax"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_ignored_outputs_still_assert_something(path):
    for cell in load(path)["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "nbval-ignore-output" in tags:
            assert "assert" in "".join(cell["source"]), (
                "a cell whose output is ignored must assert"
            )


def test_widget_state_is_saved_where_widgets_are_shown():
    for path in CHAPTERS:
        notebook = load(path)
        shows_widget = any(
            "application/vnd.jupyter.widget-view+json" in o.get("data", {})
            for c in notebook["cells"]
            if c["cell_type"] == "code"
            for o in c["outputs"]
        )
        if shows_widget:
            state = (
                notebook["metadata"]
                .get("widgets", {})
                .get("application/vnd.jupyter.widget-state+json", {})
            )
            assert state.get("state"), (
                f"{path.name} shows widgets but stores no widget state"
            )


CORE_WIDGET_MODULES = {
    "@jupyter-widgets/base",
    "@jupyter-widgets/controls",
    "@jupyter-widgets/output",
}


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_widgets_are_core_and_paired_with_a_static_figure(path):
    """Colab runs ipywidgets 7 (core widgets only), and a static page cannot run a widget's Python
    callback: each widget follows a cell that draws the same figure statically."""
    notebook = load(path)
    state = (
        notebook["metadata"]
        .get("widgets", {})
        .get("application/vnd.jupyter.widget-state+json", {})
    )
    modules = {model["model_module"] for model in state.get("state", {}).values()}
    assert modules <= CORE_WIDGET_MODULES, (
        f"non-core widget modules: {modules - CORE_WIDGET_MODULES}"
    )
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        if any(
            "application/vnd.jupyter.widget-view+json" in o.get("data", {})
            for o in cell["outputs"]
        ):
            earlier = code[max(0, i - 2) : i]
            assert any(
                "image/png" in o.get("data", {}) for c in earlier for o in c["outputs"]
            ), (
                f"the widget in {''.join(cell['source'])[:60]!r} has no static figure just before it"
            )


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_figure_has_alt_text(path):
    """myst-nb writes a cell's `mystnb.image.alt` metadata onto the rendered <img>; without it the
    alt text is the image's file name."""
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "code" and any(
            "image/png" in o.get("data", {}) for o in cell["outputs"]
        ):
            alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt.split()) >= 5, (
                f"figure cell without alt text: {''.join(cell['source'])[:80]!r}"
            )
