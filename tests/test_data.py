"""The run data chapter 8 plots is what tools/experiments.py says it is.

Every run folder of a group that tools/experiments.py defines must hold the config.json
of exactly the command the script gives for that arm and seed (with the per-task support
resolved as the library resolves it), and a metrics.csv that ran to the end with one row
per evaluation. The published reference points must be complete.
"""

import csv
import dataclasses
import json
import sys
from pathlib import Path

import pytest

from fasttd3.cli import parse_flags
from fasttd3.tasks import resolve_config
from fasttd3.training import Config

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "book" / "data"
sys.path.insert(0, str(ROOT / "tools"))
import experiments  # noqa: E402

# Settings that name or place a run; they do not shape what it learns.
PLACE = {"run_name", "results_dir", "models_dir", "save_freq", "resume"}
# Settings that runs made before they existed do not record (they ran as the default).
ADDED_LATER = {"backend", "preset"}
RUNS = [
    (group, arm, seed, flags)
    for group, arm, seed, flags in experiments.runs()
    if (DATA / group / f"{arm}__seed{seed}" / "metrics.csv").exists()
]


def test_some_runs_of_the_long_experiments_are_in_the_repository():
    assert {group for group, *_ in RUNS} >= {"tasks_300k"}


@pytest.mark.parametrize(
    "group, arm, seed, flags", RUNS, ids=[f"{g}/{a}/{s}" for g, a, s, _ in RUNS]
)
def test_a_run_was_made_by_its_documented_command(group, arm, seed, flags):
    folder = DATA / group / f"{arm}__seed{seed}"
    recorded = json.loads((folder / "config.json").read_text())
    config, given = parse_flags(flags)
    expected, sources = resolve_config(config, given)
    for name, value in dataclasses.asdict(expected).items():
        if name in PLACE:
            continue
        if name not in recorded:  # a setting added after the run: it had its default
            assert name in ADDED_LATER and sources[name] == "default", name
            assert value == getattr(Config(), name), name
            continue
        assert recorded[name] == value, f"{name}: {recorded[name]} != {value}"
        assert recorded["sources"][name] == sources[name], name

    with (folder / "metrics.csv").open() as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    every = expected.eval_freq
    assert steps == list(range(every, expected.max_timesteps + 1, every))


def test_the_reference_points_hold_ten_seeds_per_method_task_and_budget():
    path = DATA / "references" / "simbav2_baselines.csv"
    with path.open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    cells = {}
    for row in rows:
        key = (row["method"], row["env"], int(row["target_step"]))
        cells.setdefault(key, set()).add(int(row["seed"]))
        # the logged step is the nearest one: within 2% of the budget
        assert abs(int(row["logged_step"]) - key[2]) <= 0.02 * key[2]
    assert len(cells) == 3 * 3 * 2
    assert all(len(seeds) == 10 for seeds in cells.values())


def test_the_td3_runs_use_the_td3_preset_values():
    # The baseline's flags are written out (the runs must not change with a default),
    # and must say exactly what --preset td3 says.
    flags, _ = resolve_config(*parse_flags(experiments.TD3))
    preset, _ = resolve_config(*parse_flags(["--preset", "td3"]))
    assert dataclasses.replace(flags, preset="td3") == preset
