"""Execute chapters in place, storing outputs and widget state, as nbval and the book expect.

    python tools/run_notebooks.py book/02_distributional_critic.ipynb ...   # default: every chapter

Run it in the pinned environment (requirements.txt) on the CPU: the stored outputs are what
`pytest --nbval` compares against. Timings printed at the end are per notebook.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def run(path):
    notebook = nbformat.read(path, as_version=4)
    # record_timing=False keeps execution timestamps out of the stored notebook (and out of diffs).
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        store_widget_state=True,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.time()
    client.execute()
    nbformat.write(notebook, path)
    return time.time() - start


def main(paths):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    paths = [Path(p).resolve() for p in paths] or sorted(
        (ROOT / "book").glob("*.ipynb")
    )
    for path in paths:
        print(f"{path.relative_to(ROOT)}: {run(path):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
