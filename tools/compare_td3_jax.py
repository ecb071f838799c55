"""Environment steps per second of FastTD3 (this library) against td3-jax, side by side.

    python tools/compare_td3_jax.py --port PATH [--rounds 2] [--skip 25] [--window 30]
                                    [--out book/data/bench/td3jax.json]

PATH is a checkout of td3-jax (github.com/0xWOLAND/td3-jax) at commit 360d9ed; it is run
unchanged, by its own main.py, in this Python environment (it needs jax, flax.linen, optax,
gymnasium and MuJoCo, all of which this library needs too). Both programs run td3-jax's
README commands, "basic" (1 env, batch 256, width 256, 1 update per env step) and "all
features" (16 envs, 4 updates, batch 512, width 512, linear learning-rate schedule), each
by its command line, under tools/steprate.py, which counts the MuJoCo steps of any program
the same way. Evaluation is switched off in both (--eval_freq 1000000000; ours also
--save_freq 0 and results in a temporary folder), --max_timesteps is far beyond the run,
and both start learning after --start_timesteps random steps. A run's rate is the env
steps per second in a window of --window seconds that starts --skip seconds after its
count passed --start_timesteps (so compilation is left out); then the run is killed.
Runs alternate (td3-jax, ours, for each command, then the next round) and the best of
the rounds is kept. td3-jax's main() rewrites --num_updates 1 to
min(64, max(1, num_envs // 2)) (1 for 1 env); what each run really ran is recorded from
its output (td3-jax) or its config.json (ours).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPRATE = ROOT / "tools" / "steprate.py"
NEVER = "1000000000"
COMMANDS = {  # td3-jax's README: the basic command and "FastTD3 with all features"
    "basic": ["--env", "HalfCheetah-v5", "--seed", "0", "--num_envs", "1",
              "--num_updates", "1", "--batch_size", "256", "--hidden_dim", "256"],
    "all features": ["--env", "HalfCheetah-v5", "--seed", "0", "--num_envs", "16",
                     "--num_updates", "4", "--batch_size", "512", "--hidden_dim", "512",
                     "--lr_schedule", "linear"],
}  # fmt: skip


def program_command(program, flags, port, start_timesteps, folder):
    common = [*flags, "--start_timesteps", str(start_timesteps),
              "--max_timesteps", "100000000", "--eval_freq", NEVER]  # fmt: skip
    if program == "td3-jax":
        return [str(Path(port) / "main.py"), *common]
    return ["-m", "fasttd3", *common, "--save_freq", "0",
            "--results_dir", f"{folder}/results", "--models_dir", f"{folder}/models"]  # fmt: skip


def read_counts(path):
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2:
            rows.append((int(parts[0]), float(parts[1])))
    return rows


def measure(program, name, args, folder):
    """One run: (steps per second, details)."""
    counts = Path(folder) / "counts.txt"
    log = Path(folder) / "output.txt"
    program_line = program_command(
        program, COMMANDS[name], args.port, args.start_timesteps, folder
    )
    command = [sys.executable, str(STEPRATE), str(counts), "--", *program_line]
    cwd = args.port if program == "td3-jax" else str(ROOT)
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    launched = time.time()
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    learning, window, deadline = None, None, launched + args.timeout
    try:
        while time.time() < deadline:
            time.sleep(0.5)
            rows = read_counts(counts)
            if process.poll() is not None:
                break
            if learning is None:
                learning = next((t for c, t in rows if c > args.start_timesteps), None)
                continue
            start = next(((c, t) for c, t in rows if t >= learning + args.skip), None)
            if start is None:
                continue
            end = next(((c, t) for c, t in rows if t >= start[1] + args.window), None)
            if end is not None:
                window = (start, end)
                break
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    text = log.read_text(errors="replace")
    if window is None:
        sys.exit(f"{program} {name}: no measurement window (see its output):\n"
                 + text[-3000:])  # fmt: skip
    (c0, t0), (c1, t1) = window
    ran = {}
    if program == "td3-jax":
        for key, pattern in [("num_envs", r"Parallel Environments: (\d+)"),
                             ("num_updates", r"Training Updates per Step: (\d+)")]:  # fmt: skip
            found = re.search(pattern, text)
            ran[key] = int(found.group(1)) if found else None
    else:
        for path in Path(folder, "results").glob("*/config.json"):
            config = json.loads(path.read_text())
            keys = ("num_envs", "num_updates", "batch_size", "hidden_dim",
                    "lr_schedule", "buffer_size", "vectorization_mode")  # fmt: skip
            ran = {key: config[key] for key in keys}
    rate = (c1 - c0) / (t1 - t0)
    details = {"name": name, "program": program,
               "command": shlex.join(["python", *program_line]),
               "steps_per_second": rate,
               "window": {"start_count": c0, "end_count": c1, "seconds": t1 - t0,
                          "starts_after_learning_s": t0 - learning,
                          "learning_began_after_launch_s": learning - launched},
               "ran": ran}  # fmt: skip
    return rate, details


def machine():
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("jax", "jaxlib", "flax", "optax", "gymnasium", "mujoco"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu_model": model, "cpu_count": os.cpu_count(),
            "load_average_1min": load, "python": platform.python_version(),
            "platform": platform.platform(), "packages": versions,
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
            "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}  # fmt: skip


def update_only_rate(bench_file):
    """Trainer.train's update-only rate at the basic config from a bench JSON file."""
    try:
        bench = json.loads(Path(bench_file).read_text())
        rows = next(r for r in bench["loops"] if r["name"] == "default")["rows"]
        return next(r for r in rows if r["design"] == "update only")["steps_per_second"]
    except (OSError, ValueError, KeyError, StopIteration):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True, help="td3-jax checkout (360d9ed)")
    parser.add_argument("--port_commit", default="360d9ed")
    parser.add_argument(
        "--commands",
        default="basic,all features",
        help="comma-separated: basic, all features",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--skip",
        type=float,
        default=25.0,
        help="seconds after learning starts before the window",
    )
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--start_timesteps", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=300.0, help="per run")
    parser.add_argument(
        "--bench",
        default=str(ROOT / "book/data/bench/cpu.json"),
        help="bench JSON with the update-only rate (for the 85%% check)",
    )
    parser.add_argument(
        "--out", help="write the runs and the summary to this JSON file"
    )
    args = parser.parse_args(argv)  # fmt: skip
    argv = sys.argv[1:] if argv is None else argv
    if not (Path(args.port) / "main.py").exists():
        sys.exit(f"no main.py in {args.port}: pass a td3-jax checkout")
    names = [name.strip() for name in args.commands.split(",")]
    report = {"command": shlex.join(["python", "tools/compare_td3_jax.py", *argv]),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds"),
              "machine": machine(),
              "port": {"repository": "github.com/0xWOLAND/td3-jax",
                       "commit": args.port_commit},
              "settings": {"rounds": args.rounds, "skip_seconds": args.skip,
                           "window_seconds": args.window,
                           "start_timesteps": args.start_timesteps},
              "runs": []}  # fmt: skip
    best = {}
    for round_index in range(args.rounds):
        for name in names:
            for program in ("td3-jax", "fasttd3"):
                with tempfile.TemporaryDirectory() as folder:
                    rate, details = measure(program, name, args, folder)
                details["round"] = round_index
                report["runs"].append(details)
                key = (name, program)
                best[key] = max(best.get(key, 0.0), rate)
                print(f"round {round_index + 1}: {name:>12} {program:>8} "
                      f"{rate:8.1f} env steps/s  ran {details['ran']}", flush=True)  # fmt: skip
    report["summary"] = []
    for name in names:
        port, ours = best[(name, "td3-jax")], best[(name, "fasttd3")]
        report["summary"].append({"name": name, "td3jax_steps_per_second": port,
                                  "fasttd3_steps_per_second": ours,
                                  "ratio": ours / port})  # fmt: skip
        print(
            f"{name}: fasttd3 {ours:.1f} / td3-jax {port:.1f} env steps/s = "
            f"{ours / port:.2f}x"
        )
    update_only = update_only_rate(args.bench)
    if update_only and "basic" in names:
        ours = best[("basic", "fasttd3")]
        report["basic_cli_vs_update_only"] = {
            "cli_steps_per_second": ours, "update_only_per_second": update_only,
            "ratio": ours / update_only, "bench_file": str(args.bench)}  # fmt: skip
        print(
            f"basic command end to end vs Trainer.train's update-only rate "
            f"({args.bench}): {ours / update_only:.2f}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
