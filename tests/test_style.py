"""The code reads the same everywhere: ruff's formatter (88 columns) and linter agree with every
Python file and every chapter (settings in pyproject.toml)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUFF = shutil.which("ruff")


@pytest.mark.skipif(
    RUFF is None, reason="ruff is not installed (requirements.txt has it)"
)
@pytest.mark.parametrize(
    "command", [["format", "--check"], ["check"]], ids=["format", "lint"]
)
def test_ruff_is_clean(command):
    result = subprocess.run(
        [RUFF, *command, "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_no_code_line_is_wider_than_the_page():
    # ruff format keeps code at 88 columns, but not lines it is told to skip or long
    # strings; on the rendered page a wider line scrolls sideways.
    wide = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                lines = "".join(cell["source"]).splitlines()
                wide += [(path.name, line) for line in lines if len(line) > 88]
    assert not wide, wide
