"""A run killed with SIGKILL at any moment and resumed is the same run: its metrics.csv equals
the uninterrupted run's, row for row (all but the two timing columns). Hopper-v5, because its
episodes end by termination at random times, so resets happen all along."""

import csv
import os
import signal
import subprocess
import sys
import time

import flax.serialization

FLAGS = ["--env", "Hopper-v5", "--max_timesteps", "2500", "--start_timesteps", "600",
         "--eval_freq", "500", "--eval_episodes", "2", "--save_freq", "700", "--hidden_dim", "32",
         "--batch_size", "64", "--buffer_size", "5000", "--seed", "3"]  # fmt: skip
TIMING = {"wall_time", "steps_per_second"}
ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}


def command(tmp_path, name, *extra):
    return [sys.executable, "-m", "fasttd3", *FLAGS, "--run_name", name,
            "--results_dir", str(tmp_path / "results"), "--models_dir", str(tmp_path / "models"),
            *extra]  # fmt: skip


def rows(tmp_path, name):
    with open(tmp_path / "results" / name / "metrics.csv") as f:
        return [
            {k: v for k, v in row.items() if k not in TIMING}
            for row in csv.DictReader(f)
        ]


def checkpoint_step(path):
    try:
        return flax.serialization.msgpack_restore(path.read_bytes())["step"]
    except (OSError, ValueError, KeyError):
        return 0  # not there yet


def test_sigkill_and_resume_gives_the_same_metrics(tmp_path):
    subprocess.run(
        command(tmp_path, "whole"),
        env=ENV,
        check=True,
        capture_output=True,
        timeout=600,
    )

    # Kill the second run once its second checkpoint (step 1400) exists, between two
    # checkpoints, in the middle of learning; its metrics.csv then has rows the resume redoes.
    process = subprocess.Popen(command(tmp_path, "killed"), env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    checkpoint = tmp_path / "models" / "killed" / "checkpoint.msgpack"
    deadline = time.time() + 600
    while (
        checkpoint_step(checkpoint) < 1400
        and process.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, (
        "the run ended before it could be killed"
    )
    killed_at = checkpoint_step(checkpoint)
    assert 1400 <= killed_at < 2500

    subprocess.run(command(tmp_path, "killed", "--resume"), env=ENV, check=True, capture_output=True,
                   timeout=600)  # fmt: skip
    whole, resumed = rows(tmp_path, "whole"), rows(tmp_path, "killed")
    assert [row["step"] for row in whole] == ["500", "1000", "1500", "2000", "2500"]
    assert resumed == whole
