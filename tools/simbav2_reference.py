"""Chapter 8's reference points: `python tools/simbav2_reference.py PATH_TO_SIMBAV2`.

SimbaV2 (github.com/DAVIAN-Robotics/SimbaV2) publishes the learning curves of its baselines,
10 seeds each, in results/baseline/*.csv (columns exp_name, env_name, seed, metric, env_step,
value). This script keeps, for SAC, CrossQ and REDQ on HalfCheetah, Hopper and Walker2d (v4,
the version SimbaV2 ran), each seed's average evaluation return at the logged step nearest to
100k and to 300k env steps, and writes them to book/data/references/simbav2_baselines.csv.
"""

import argparse
import csv
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "data" / "references" / "simbav2_baselines.csv"
METHODS = {"sac": "SAC", "crossq": "CrossQ", "redq_utd20": "REDQ"}
ENVS = ("HalfCheetah-v4", "Hopper-v4", "Walker2d-v4")
TARGETS = (100_000, 300_000)


def seed_curves(path, env):
    """{seed: {env_step: return}} of one method on one task."""
    curves = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            if row["env_name"] == env and row["metric"] == "avg_return":
                curves.setdefault(int(row["seed"]), {})[float(row["env_step"])] = float(
                    row["value"]
                )
    return curves


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("simbav2", type=Path, help="a checkout of SimbaV2")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "-C", str(args.simbav2), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip() or "unknown"  # fmt: skip
    rows = []
    for file, method in METHODS.items():
        for env in ENVS:
            curves = seed_curves(
                args.simbav2 / "results" / "baseline" / f"{file}.csv", env
            )
            for seed, curve in sorted(curves.items()):
                for target in TARGETS:
                    logged = min(curve, key=lambda step: abs(step - target))
                    rows.append(
                        [
                            method,
                            env,
                            target,
                            int(logged),
                            seed,
                            round(curve[logged], 1),
                        ]
                    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as f:
        f.write(f"# SimbaV2 commit {commit}, results/baseline/*.csv\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(
            ["method", "env", "target_step", "logged_step", "seed", "return"]
        )
        writer.writerows(rows)
    print(f"{len(rows)} rows -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
