"""Execute chapters in place, storing outputs and widget state, as nbval and the book expect.

    python tools/run_notebooks.py book/02_distributional_critic.ipynb ...   # default: every chapter
    python tools/run_notebooks.py --slowest 5 book/09_performance.ipynb     # and its slowest cells

Run it in the pinned environment (requirements.txt) on the CPU: the stored outputs are what
`pytest --nbval` compares against. Timings printed at the end are per notebook.
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def cell_seconds(cell):
    """Seconds a cell took, from the timestamps nbclient records in its metadata."""
    times = cell.metadata.get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.datetime.fromisoformat
    return (
        parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))
    ).total_seconds()


def run(path, slowest=0):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        store_widget_state=True,
        record_timing=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.time()
    client.execute()
    seconds = time.time() - start
    timed = [(cell_seconds(cell), i) for i, cell in enumerate(notebook.cells)]
    for cell_time, index in sorted(timed, reverse=True)[:slowest]:
        print(f"  cell {index}: {cell_time:.1f} s", flush=True)
    # The timestamps stay out of the stored notebook (and out of diffs).
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)
    return seconds


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="notebooks (default: every chapter)")
    parser.add_argument(
        "--slowest", type=int, default=0, help="print the N slowest cells of each"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    paths = [Path(p).resolve() for p in args.paths] or sorted(
        (ROOT / "book").glob("*.ipynb")
    )
    for path in paths:
        seconds = run(path, args.slowest)
        print(f"{path.relative_to(ROOT)}: {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
