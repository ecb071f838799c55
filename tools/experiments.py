"""Every learning curve of chapter 8: `python tools/experiments.py [--jobs 2] [--only GROUP ...]`.

Each run is one `python -m fasttd3 ...` command (printed before it starts). Runs write to a
scratch folder that survives the script (default ~/.cache/fasttd3-experiments) and save a
checkpoint every 10,000 steps, so a stopped script continues every unfinished run with
`--resume` where its last checkpoint left it (the resume is exact: chapter 7). A finished
run's config.json and metrics.csv are copied to book/data/GROUP/ARM__seedN/, which is what
chapter 8 reads, and with --commit committed at once; runs whose data is there are skipped.
Runs are single-threaded (XLA_FLAGS below) so that `--jobs` runs share the cores evenly.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data"
SEEDS = (0, 1, 2)
# The configuration of every run: the library's defaults (per-task support included) with
# 4 environments and 4 updates per vector step, which chapter 8's 60k-step grid found as
# sample-efficient as 1 x 1 (4,938 +- 351 vs 4,947 +- 348) and faster per minute.
BASE = ["--num_envs", "4", "--num_updates", "4"]
HALFCHEETAH_150K = [*BASE, "--env", "HalfCheetah-v5", "--max_timesteps", "150000"]
# TD3 (Fujimoto et al., 2018) from the same code: a scalar critic, a target actor, no
# observation normalization, one environment and one update per env step, TD3's noises,
# tau and Adam without weight decay. The networks stay the book's (256, 128, 64 wide),
# so that only the algorithm differs from the book's agent. Every TD3 value is a flag,
# so a later change of the library's defaults cannot reach these runs; they are the
# values of `--preset td3` (tests/test_data.py checks that the two agree).
TD3 = ["--num_envs", "1", "--num_updates", "1", "--no-distributional",
       "--use_target_actor", "--no-normalize_obs", "--expl_noise", "0.1",
       "--tau", "0.005", "--policy_noise", "0.2", "--noise_clip", "0.5",
       "--policy_freq", "2", "--weight_decay", "0"]  # fmt: skip
TASKS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")

EXPERIMENTS = {
    # The three tasks to 300k env steps (HalfCheetah's first 150k are also the base arm of
    # the two HalfCheetah groups below: a run's first steps do not depend on its length).
    "tasks_300k": {
        env.split("-")[0].lower(): [*BASE, "--env", env, "--max_timesteps", "300000"]
        for env in TASKS
    },
    # One FastTD3 ingredient off at a time.
    "ablations_150k": {
        "scalar_critic": [*HALFCHEETAH_150K, "--no-distributional"],
        "no_cdq": [*HALFCHEETAH_150K, "--no-use_cdq"],
        "no_normalize_obs": [*HALFCHEETAH_150K, "--no-normalize_obs"],
    },
    # The support: too narrow (td3-jax's +-250), the task table's, and much too wide.
    "support_150k": {
        "support_250": [*HALFCHEETAH_150K, "--v_min", "-250", "--v_max", "250"],
        "support_5000": [*HALFCHEETAH_150K, "--v_min", "-5000", "--v_max", "5000"],
    },
    # The baseline: TD3 on the three tasks to 300k env steps, same evaluation protocol.
    "td3_300k": {
        env.split("-")[0].lower(): [*TD3, "--env", env, "--max_timesteps", "300000"]
        for env in TASKS
    },
    # The on-device loop (chapter 10) learning on a CPU: InvertedPendulum simulated by
    # MJX, 4 environments and 4 updates per vector step (one update per env step), the
    # whole loop compiled; a few CPU minutes per run.
    "ondevice_cpu": {
        "inverted_pendulum": [
            *["--backend", "mjx", "--env", "InvertedPendulum-v5", "--num_envs", "4"],
            *["--num_updates", "4", "--start_timesteps", "1000"],
            *["--max_timesteps", "20000", "--eval_freq", "2000"],
        ],
    },
    # FastTD3's own algorithmic values (tau 0.1, target smoothing noise 0.001) at the
    # book's CPU scale; everything else as the book's agent.
    "fasttd3_values_150k": {
        "tau_0.1_smoothing_0.001": [
            *HALFCHEETAH_150K,
            *["--tau", "0.1", "--policy_noise", "0.001"],
        ],
    },
}


def runs(only=None):
    """(group, arm, seed, flags) for every run: group by group (the tasks first), and within a
    group seed by seed, so a stopped script leaves every arm of a group with as many seeds."""
    for group, arms in EXPERIMENTS.items():
        if only and group not in only:
            continue
        for seed in SEEDS:
            for arm, flags in arms.items():
                yield group, arm, seed, ["--seed", str(seed), *flags]


def commit(paths, message):
    """git commit just these paths; retried while another commit holds the index."""
    for _ in range(30):
        added = subprocess.run(
            ["git", "add", "--", *paths], cwd=ROOT, capture_output=True
        )
        done = (
            added.returncode == 0
            and subprocess.run(
                ["git", "commit", "-q", "-m", message, "--", *paths],
                cwd=ROOT,
                capture_output=True,
            ).returncode
            == 0
        )
        if done:
            return True
        time.sleep(2)
    return False


def run_one(group, arm, seed, flags, scratch, commit_data, library):
    target = DATA / group / f"{arm}__seed{seed}"
    if (target / "metrics.csv").exists():
        return f"skip {target.relative_to(ROOT)} (already there)"
    name = f"{group}__{arm}__seed{seed}"
    results, models = scratch / "results", scratch / "models"
    resume = (models / name / "checkpoint.msgpack").exists()
    if not resume:  # killed before its first checkpoint: start it again from nothing
        shutil.rmtree(results / name, ignore_errors=True)
        shutil.rmtree(models / name, ignore_errors=True)
    command = [sys.executable, "-m", "fasttd3", *flags, "--run_name", name,
               "--results_dir", str(results), "--models_dir", str(models),
               "--save_freq", "10000", *(["--resume"] if resume else [])]  # fmt: skip
    print(
        ("resume: " if resume else "") + "python -m fasttd3 " + " ".join(flags),
        flush=True,
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}  # fmt: skip
    if library:  # a frozen copy of the package: later edits do not reach the run
        env["PYTHONPATH"] = str(library)
    # cwd outside the repository, or its fasttd3/ folder would shadow --library.
    with open(scratch / f"{name}.log", "a") as log:
        subprocess.run(
            command,
            env=env,
            cwd=scratch,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    target.mkdir(parents=True, exist_ok=True)
    for file in ("config.json", "metrics.csv"):
        shutil.copy(results / name / file, target / file)
    if commit_data:
        files = [str(target / "config.json"), str(target / "metrics.csv")]
        commit(files, f"Run data: {group}/{arm}, seed {seed}")
    return f"done {target.relative_to(ROOT)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument(
        "--only", nargs="*", choices=list(EXPERIMENTS), help="groups to run"
    )
    parser.add_argument("--scratch", default=str(Path.home() / ".cache" / "fasttd3-experiments"),
                        help="where runs write results/, models/ and logs")  # fmt: skip
    parser.add_argument(
        "--commit", action="store_true", help="git commit each run's data"
    )
    parser.add_argument(
        "--library",
        default=None,
        help="folder holding the fasttd3 package to run (e.g. a git worktree at a fixed "
        "commit); default: the installed one",
    )
    args = parser.parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"logs and checkpoints in {scratch}", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(run_one, *run, scratch, args.commit, args.library)
            for run in runs(args.only)
        ]
        for future in futures:
            print(future.result(), flush=True)


if __name__ == "__main__":
    main()
