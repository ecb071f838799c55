"""The code reads the same everywhere: ruff's formatter (88 columns) and linter agree with every
Python file and every chapter (settings in pyproject.toml)."""

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
