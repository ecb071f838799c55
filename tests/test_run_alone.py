"""Each chapter runs alone, as it does when opened from GitHub in Colab.

Colab gives a chapter a fresh runtime in `/content` with nothing but the notebook: no `book/data`,
no sibling files, no checkout. The chapter's first code cell must install what Colab lacks and
fetch what the chapter reads (see book/08_experiments.ipynb). This test reproduces that situation
here: each chapter is copied ALONE into an empty temporary folder (its `/content`, the working
folder) and executed there with nbclient
(errors fail; outputs are not compared, nbval does that), with the Colab branch of its first cell
switched on and made offline:

- a hidden setup cell puts a stand-in `google.colab` module into `sys.modules`, so the chapter's
  `if "google.colab" in sys.modules:` branch runs;
- in the first code cell, `%pip install ...` becomes a no-op (the library is installed here,
  editable, and Colab's own packages are what `tests/colab_stack.sh` checks), every `/content`
  becomes a temporary folder, and `!git clone ... URL DEST` becomes a copy of this checkout's
  tracked files (`git ls-files`, as they are in the working tree) into DEST.

A path that only works inside the repository (`Path("data")` with no fetch, a sibling file)
fails here. Every chapter runs its first cells (the Colab cell and the imports), which checks
that the Colab branch itself runs; a chapter whose code reads repository files (book/data and
the like, found by a pattern in its code) must then find the `data` folder in its working
folder, where its code looks for it. The rest of each chapter is executed by `pytest --nbval`,
in the same folder layout (the Colab cell changes into the clone's `book/`, nbval runs in
this checkout's); CI runs it on a fresh clone, which holds only tracked files, as Colab's
does. Set RUN_ALONE_ALL=1 to run every chapter here in full as well (several minutes).
"""

import os
import re
import shlex
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
# Code that reads files shipped in the repository: the book/data folder, CSV/JSON readers, or a
# clone in the Colab cell.
READS_FILES = re.compile(
    r"""\bDATA\b|["']data["'/]|book/data|git clone|read_metrics\(|genfromtxt\("""
)
SETUP = """\
import pathlib, shutil, subprocess, sys, types

colab = types.ModuleType("google.colab")  # the chapter's Colab branch runs
colab.output = types.ModuleType("google.colab.output")  # JAX imports it when it sees Colab
sys.modules.update({"google.colab": colab, "google.colab.output": colab.output})


def _run_alone_copy_checkout(dest, root=ROOT):
    \"\"\"What `git clone` of the repository gives: the tracked files, here from this checkout.\"\"\"
    listed = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\\0")):
        source, target = pathlib.Path(root, name), pathlib.Path(dest, name)
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
"""


def colab_cell_offline(source, content):
    """The chapter's first code cell with pip a no-op, /content -> content, git clone -> copy."""
    source = re.sub(r"\\\n\s*", " ", source).replace("/content", str(content))
    lines = []
    for line in source.splitlines():
        indent, command = re.match(r"(\s*)(.*)", line).groups()
        if re.match(r"[%!]\s*pip\b", command):
            lines.append(f"{indent}pass  # run-alone test: {command[:60]}")
        elif re.match(r"!\s*git\s+clone\b", command):
            # git clone [options] URL [DEST]; the URL may be an IPython {variable}.
            words, positional = shlex.split(command[1:])[2:], []
            while words:
                word = words.pop(0)
                if word in (
                    "--depth",
                    "-b",
                    "--branch",
                    "-o",
                    "--origin",
                    "-c",
                    "--config",
                ):
                    words.pop(0)  # the option's value
                elif not word.startswith("-"):
                    positional.append(word)
            url = positional[0].strip("{}").removesuffix(".git")
            dest = positional[1] if len(positional) > 1 else url.rsplit("/", 1)[-1]
            lines.append(
                f"{indent}_run_alone_copy_checkout({str(Path(content, dest))!r})"
            )
        else:
            lines.append(line)
    return "\n".join(lines)


def reads_files(notebook):
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    return bool(READS_FILES.search(code))


@pytest.mark.parametrize(
    "clone",
    [
        "    !git clone -q --depth 1 https://github.com/o/r \\\n        /content/r\n",
        '    URL = "https://github.com/o/r"\n    !git clone -q --depth 1 {URL} /content/r\n',
        "    !git clone https://github.com/o/r.git\n    %cd r/book\n",
    ],
)
def test_the_rewrite_of_a_colab_cell(tmp_path, clone):
    cell = (
        'import sys\nif "google.colab" in sys.modules:\n    %pip install -q "a" \\\n'
        f'        "b"\n{clone}    %cd /content/r/book'
    )
    rewritten = colab_cell_offline(cell, tmp_path)
    assert "%pip" not in rewritten.replace("# run-alone test: %pip", "")
    assert "!git" not in rewritten
    assert f"_run_alone_copy_checkout({str(tmp_path / 'r')!r})" in rewritten
    assert f"%cd {tmp_path}/r/book" in rewritten


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_runs_alone(chapter, tmp_path):
    # Colab's /content: the working folder, holding this notebook only.
    content = tmp_path / "content"
    content.mkdir()
    notebook = nbformat.read(chapter, as_version=4)
    nbformat.write(notebook, content / chapter.name)
    code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    first = notebook.cells[code[0]]
    assert "google.colab" in first.source, f"{chapter.name}: no Colab cell first"
    first.source = colab_cell_offline(first.source, content)
    if not os.environ.get("RUN_ALONE_ALL"):
        # The Colab cell and the imports; a chapter that reads files must find them.
        reads = reads_files(notebook)
        notebook.cells = notebook.cells[: code[1] + 1]
        if reads:
            check = (
                "import pathlib\nassert pathlib.Path('data').is_dir(), 'no data here'"
            )
            notebook.cells.append(nbformat.v4.new_code_cell(check))
    setup = SETUP.replace("ROOT", repr(str(ROOT)))
    notebook.cells.insert(0, nbformat.v4.new_code_cell(setup))
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    resources = {"metadata": {"path": str(content)}}
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources=resources
    ).execute()
