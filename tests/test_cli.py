"""The command line: every seed flag, one-line errors that overwrite nothing, results and resume."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fasttd3.cli import ConfigError, build_parser, main, parse_config, train
from fasttd3.training import Config

ROOT = Path(__file__).resolve().parent.parent

SEED_FLAGS = {  # flag: default, as the seed project's README documents them
    "env": "HalfCheetah-v5", "seed": 0, "max_timesteps": 1_000_000, "start_timesteps": 25_000, "batch_size": 256,
    "num_envs": 1, "num_updates": 1, "distributional": True, "num_atoms": 101, "v_min": -250.0, "v_max": 250.0,
    "normalize_obs": True, "lr_schedule": None, "hidden_dim": 256, "discount": 0.99, "tau": 0.005,
    "policy_noise": 0.2, "noise_clip": 0.5, "policy_freq": 2, "actor_lr": 3e-4, "critic_lr": 3e-4,
}


def test_every_seed_flag_exists_with_its_default():
    config = parse_config([])
    for flag, default in SEED_FLAGS.items():
        assert getattr(config, flag) == default, flag


def test_seed_example_commands_parse():
    basic = parse_config("--env HalfCheetah-v5 --seed 0".split())
    assert basic == Config()
    fast = parse_config("--env HalfCheetah-v5 --num_envs 16 --num_updates 4 --batch_size 512 --hidden_dim 512 "
                        "--lr_schedule linear".split())
    assert (fast.num_envs, fast.num_updates, fast.batch_size, fast.hidden_dim, fast.lr_schedule) == (16, 4, 512, 512, "linear")
    td3 = parse_config("--env HalfCheetah-v5 --no-distributional --no-normalize_obs".split())
    assert not td3.distributional and not td3.normalize_obs
    assert parse_config(["--max_timesteps", "1e6"]).max_timesteps == 1_000_000
    assert parse_config(["--lr_schedule", "None"]).lr_schedule is None


def test_help_explains_every_flag():
    text = build_parser().format_help()
    for field in dataclasses.fields(Config):
        assert f"--{field.name}" in text


BAD = [
    (["--env", "NoSuchEnv-v0"], "--env"),
    (["--env", "CartPole-v1"], "continuous Box action space"),
    (["--v_min", "10", "--v_max", "10"], "--v_min must be smaller than --v_max"),
    (["--num_atoms", "1"], "--num_atoms must be at least 2"),
    (["--batch_size", "0"], "--batch_size must be a positive integer"),
    (["--num_envs", "-2"], "--num_envs must be a positive integer"),
    (["--hidden_dim", "0"], "--hidden_dim must be a positive integer"),
    (["--policy_freq", "0"], "--policy_freq must be a positive integer"),
    (["--tau", "0"], "--tau must be in (0, 1]"),
    (["--discount", "1.5"], "--discount must be in (0, 1]"),
    (["--lr_schedule", "exponential"], "--lr_schedule must be linear, cosine or None"),
    (["--seed", "abc"], "--seed: invalid integer value"),
    (["--seed", "1.5"], "--seed: invalid integer value"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_give_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--results_dir", "r", "--models_dir", "m"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_the_real_command_exits_2_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fasttd3", "--tau", "2"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --tau must be in (0, 1], got 2.0"
    assert list(tmp_path.iterdir()) == []


def tiny(tmp_path, **changes):
    return Config(**{**dict(env="Pendulum-v1", max_timesteps=600, start_timesteps=200, eval_freq=200,
                            eval_episodes=2, hidden_dim=32, batch_size=32, v_min=-1600.0, v_max=0.0,
                            results_dir=str(tmp_path / "results"), models_dir=str(tmp_path / "models"),
                            run_name="tiny"), **changes})


def test_run_writes_results_and_checkpoint_and_refuses_to_overwrite(tmp_path):
    rows = train(tiny(tmp_path), progress=False)
    assert [row["step"] for row in rows] == [200, 400, 600]
    run = tmp_path / "results" / "tiny"
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "eval_return", "wall_time", "steps_per_second", "critic_loss"} <= set(header)
    assert json.loads((run / "config.json").read_text())["env"] == "Pendulum-v1"
    checkpoint = tmp_path / "models" / "tiny" / "checkpoint.msgpack"
    before = checkpoint.read_bytes()
    with pytest.raises(ConfigError, match="exists"):
        train(tiny(tmp_path), progress=False)
    assert checkpoint.read_bytes() == before


def test_resume_continues_without_gap_or_duplicate(tmp_path):
    train(tiny(tmp_path, save_freq=400, max_timesteps=600), progress=False)
    rows = train(tiny(tmp_path, max_timesteps=1000, resume=True), progress=False)
    steps = [int(row["step"]) for row in rows]
    assert steps == [200, 400, 600, 800, 1000]
    csv_steps = [int(line.split(",")[0]) for line in (tmp_path / "results" / "tiny" / "metrics.csv").read_text().splitlines()[1:]]
    assert csv_steps == steps


def test_resume_rejects_missing_corrupt_or_mismatched_checkpoints(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(tiny(tmp_path, resume=True), progress=False)
    train(tiny(tmp_path), progress=False)
    with pytest.raises(ConfigError, match="different settings.*hidden_dim"):
        train(tiny(tmp_path, resume=True, hidden_dim=64, max_timesteps=800), progress=False)
    checkpoint = tmp_path / "models" / "tiny" / "checkpoint.msgpack"
    checkpoint.write_bytes(b"not a checkpoint")
    metrics_before = (tmp_path / "results" / "tiny" / "metrics.csv").read_text()
    with pytest.raises(ConfigError, match="corrupt"):
        train(tiny(tmp_path, resume=True, max_timesteps=800), progress=False)
    assert (tmp_path / "results" / "tiny" / "metrics.csv").read_text() == metrics_before
