"""The command line: every td3-jax flag, one-line errors that overwrite nothing, per-task
settings, results, resume and the guards."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import flax.serialization
import pytest

from fasttd3.checks import ConfigError
from fasttd3.cli import build_parser, main, parse_config, parse_flags
from fasttd3.run import RunError, train
from fasttd3.tasks import TASK_REWARD_RANGES, resolve_config, task_defaults
from fasttd3.training import Config

ROOT = Path(__file__).resolve().parent.parent

TD3_JAX_FLAGS = {  # flag: default, as td3-jax's README documents them
    "env": "HalfCheetah-v5",
    "seed": 0,
    "max_timesteps": 1_000_000,
    "start_timesteps": 25_000,
    "batch_size": 256,
    "num_envs": 1,
    "num_updates": 1,
    "distributional": True,
    "num_atoms": 101,
    "normalize_obs": True,
    "lr_schedule": None,
    "hidden_dim": 256,
    "discount": 0.99,
    "tau": 0.005,
    "policy_noise": 0.2,
    "noise_clip": 0.5,
    "policy_freq": 2,
    "actor_lr": 3e-4,
    "critic_lr": 3e-4,
}


def test_every_td3_jax_flag_exists_with_its_default():
    config = parse_config([])
    for flag, default in TD3_JAX_FLAGS.items():
        assert getattr(config, flag) == default, flag
    # The support is per task; a task without an entry gets td3-jax's (FastTD3's) +-250.
    assert (config.v_min, config.v_max) == (None, None)
    resolved, sources = resolve_config(Config(env="Pusher-v5"))
    assert (resolved.v_min, resolved.v_max) == (-250.0, 250.0)
    assert sources["v_max"].startswith("default")


def test_td3_jax_example_commands_parse():
    basic = parse_config("--env HalfCheetah-v5 --seed 0".split())
    assert basic == Config()
    fast = parse_config(
        "--env HalfCheetah-v5 --num_envs 16 --num_updates 4 --batch_size 512 --hidden_dim 512 "
        "--lr_schedule linear".split()
    )
    assert (
        fast.num_envs,
        fast.num_updates,
        fast.batch_size,
        fast.hidden_dim,
        fast.lr_schedule,
    ) == (16, 4, 512, 512, "linear")
    td3 = parse_config(
        "--env HalfCheetah-v5 --no-distributional --no-normalize_obs".split()
    )
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
    (  # one end from the flag, the other from the task table: an empty support
        ["--env", "HalfCheetah-v5", "--v_min", "2000"],
        "--v_min must be smaller than --v_max, got 2000.0 (flag) and 1400.0 (task table",
    ),
    (["--num_atoms", "1"], "--num_atoms must be at least 2"),
    (["--batch_size", "0"], "--batch_size must be a positive integer"),
    (["--num_envs", "-2"], "--num_envs must be a positive integer"),
    (["--hidden_dim", "0"], "--hidden_dim must be a positive integer"),
    (["--hidden_dim", "3"], "--hidden_dim must be an integer of at least 4"),
    (
        ["--critic_hidden_dim", "2"],
        "--critic_hidden_dim must be an integer of at least 4",
    ),
    (["--actor_lr=-1e-3"], "--actor_lr must be positive"),
    (["--critic_lr", "0"], "--critic_lr must be positive"),
    (["--critic_lr", "inf"], "--critic_lr must be a finite number"),
    (["--actor_lr", "nan"], "--actor_lr must be a finite number"),
    (["--policy_noise=-0.1"], "--policy_noise must be 0 or more"),
    (["--noise_clip=-1"], "--noise_clip must be 0 or more"),
    (["--weight_decay=-0.1"], "--weight_decay must be 0 or more"),
    (["--std_max", "inf"], "--std_max must be a finite number"),
    (["--expl_noise=-0.1"], "--expl_noise must be 0 or more"),
    (["--v_max", "inf"], "--v_max must be a finite number"),
    (["--std_min", "0.5", "--std_max", "0.4"], "--std_min must not exceed --std_max"),
    (["--buffer_size", "1e12"], "need about"),
    (["--num_envs", "100000", "--batch_size", "100000"], "need about"),
    (["--policy_freq", "0"], "--policy_freq must be a positive integer"),
    (["--tau", "0"], "--tau must be positive"),
    (["--discount", "1.5"], "--discount must be in (0, 1]"),
    (["--lr_schedule", "exponential"], "--lr_schedule must be linear, cosine or None"),
    (["--preset", "sac"], "--preset must be book, fasttd3, td3, got 'sac'"),
    (  # checked with the preset's values: its 128 environments
        ["--preset", "fasttd3", "--batch_size", "64"],
        "--batch_size must be at least --num_envs (128), got 64",
    ),
    (["--backend", "torch"], "--backend must be gym or mjx, got 'torch'"),
    (["--seed", "abc"], "--seed: invalid integer value"),
    (["--seed", "1.5"], "--seed: invalid integer value"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_give_one_line_and_write_nothing(
    tmp_path, monkeypatch, capsys, argv, message
):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--results_dir", "r", "--models_dir", "m"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (
        lines
    )
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_the_real_command_exits_2_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fasttd3", "--tau", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --tau must be in (0, 1], got 2.0"
    assert list(tmp_path.iterdir()) == []


def tiny(tmp_path, **changes):
    return Config(
        **{
            **dict(
                env="Pendulum-v1",
                max_timesteps=600,
                start_timesteps=200,
                eval_freq=200,
                eval_episodes=2,
                hidden_dim=32,
                batch_size=32,
                v_min=-1600.0,
                v_max=0.0,
                results_dir=str(tmp_path / "results"),
                models_dir=str(tmp_path / "models"),
                run_name="tiny",
            ),
            **changes,
        }
    )


def test_run_writes_results_and_checkpoint_and_refuses_to_overwrite(tmp_path):
    rows = train(tiny(tmp_path), progress=False)
    assert [row["step"] for row in rows] == [200, 400, 600]
    run = tmp_path / "results" / "tiny"
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {
        "step",
        "eval_return",
        "wall_time",
        "steps_per_second",
        "critic_loss",
    } <= set(header)
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
    csv_steps = [
        int(line.split(",")[0])
        for line in (tmp_path / "results" / "tiny" / "metrics.csv")
        .read_text()
        .splitlines()[1:]
    ]
    assert csv_steps == steps


def test_resume_rejects_missing_corrupt_or_mismatched_checkpoints(tmp_path):
    with pytest.raises(RunError, match="no checkpoint"):
        train(tiny(tmp_path, resume=True), progress=False)
    train(tiny(tmp_path), progress=False)
    with pytest.raises(RunError, match="different settings.*hidden_dim"):
        train(
            tiny(tmp_path, resume=True, hidden_dim=64, max_timesteps=800),
            progress=False,
        )
    checkpoint = tmp_path / "models" / "tiny" / "checkpoint.msgpack"
    checkpoint.write_bytes(b"not a checkpoint")
    metrics_before = (tmp_path / "results" / "tiny" / "metrics.csv").read_text()
    with pytest.raises(RunError, match="not a checkpoint"):
        train(tiny(tmp_path, resume=True, max_timesteps=800), progress=False)
    assert (tmp_path / "results" / "tiny" / "metrics.csv").read_text() == metrics_before


def test_folders_that_cannot_be_written_are_refused_before_anything_runs(
    tmp_path, capsys
):
    blocker = tmp_path / "a_file"
    blocker.write_text("results cannot go inside a file")
    assert (
        main(
            [
                "--results_dir",
                str(blocker / "results"),
                "--models_dir",
                str(tmp_path / "m"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: --results_dir") and "inside a file" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize("flag", ["--results_dir", "--models_dir"])
def test_a_folder_that_cannot_be_created_is_refused_even_for_root(
    tmp_path, monkeypatch, capsys, flag
):
    # os.access says yes to root everywhere, /proc included; creating the folder is the
    # only sure test. Nothing may be written, not even the other folder.
    monkeypatch.chdir(tmp_path)
    other = "--models_dir" if flag == "--results_dir" else "--results_dir"
    assert main([flag, "/proc/fasttd3-test/run", other, "elsewhere"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"error: {flag} /proc/fasttd3-test/run cannot be created"
    )
    assert list(tmp_path.iterdir()) == []
    assert not Path("/proc/fasttd3-test").exists()


def test_the_folder_check_removes_the_folders_it_created(tmp_path):
    from fasttd3.checks import check_folders

    config = Config(
        results_dir=str(tmp_path / "a" / "b" / "results"),
        models_dir=str(tmp_path / "c" / ".." / "models"),
    )
    check_folders(config)
    assert list(tmp_path.iterdir()) == []


def test_preset_fasttd3_records_the_reference_values_and_a_flag_wins(tmp_path):
    from fasttd3.tasks import PRESETS

    config, given = parse_flags(["--preset", "fasttd3", "--env", "HalfCheetah-v5"])
    resolved, sources = resolve_config(config, given)
    # FastTD3's BaseArgs (fast_td3/hyperparams.py at 229ed59)
    reference = {"num_envs": 128, "num_updates": 2, "batch_size": 32768, "tau": 0.1,
                 "policy_noise": 0.001, "noise_clip": 0.5, "std_min": 0.001,
                 "std_max": 0.4, "hidden_dim": 512, "critic_hidden_dim": 1024,
                 "weight_decay": 0.1, "n_step": 1, "buffer_size": 51200 * 128}  # fmt: skip
    for name, value in reference.items():
        assert getattr(resolved, name) == value and sources[name] == "preset (fasttd3)"
    assert sources["v_max"] == "task table (HalfCheetah-v5)"  # per-task support
    assert set(PRESETS) == {"book", "fasttd3", "td3"} and PRESETS["book"] == {}

    # A real (tiny) run: the flags beside the preset win, config.json says so.
    small = ["--num_envs", "2", "--batch_size", "32", "--hidden_dim", "16",
             "--critic_hidden_dim", "32", "--buffer_size", "2000", "--tau", "0.05"]  # fmt: skip
    argv = ["--preset", "fasttd3", "--env", "Pendulum-v1", *small,
            "--max_timesteps", "200", "--eval_freq", "100", "--eval_episodes", "1",
            "--results_dir", str(tmp_path / "r"), "--models_dir", str(tmp_path / "m"),
            "--run_name", "preset"]  # fmt: skip
    assert main(argv) == 0
    saved = json.loads((tmp_path / "r" / "preset" / "config.json").read_text())
    assert saved["preset"] == "fasttd3" and saved["sources"]["preset"] == "flag"
    assert saved["tau"] == 0.05 and saved["sources"]["tau"] == "flag"
    assert saved["policy_noise"] == 0.001
    assert saved["sources"]["policy_noise"] == "preset (fasttd3)"
    assert saved["num_updates"] == 2 and saved["critic_hidden_dim"] == 32


def test_preset_td3_is_td3():
    td3, sources = resolve_config(*parse_flags(["--preset", "td3"]))
    assert (td3.distributional, td3.use_target_actor, td3.normalize_obs) == (
        False,
        True,
        False,
    )
    assert (td3.expl_noise, td3.tau, td3.weight_decay, td3.num_envs) == (
        0.1,
        0.005,
        0.0,
        1,
    )
    assert sources["tau"] == "preset (td3)"


def test_task_table_sets_the_support_and_a_flag_wins():
    assert set(TASK_REWARD_RANGES) >= {
        "HalfCheetah-v5",
        "Hopper-v5",
        "Walker2d-v5",
        "Ant-v5",
        "Humanoid-v5",
        "InvertedPendulum-v5",
        "InvertedDoublePendulum-v5",
        "Reacher-v5",
        "Swimmer-v5",
        "Pendulum-v1",
    }
    config, given = parse_flags(["--env", "HalfCheetah-v5"])
    resolved, sources = resolve_config(config, given)
    low, high = TASK_REWARD_RANGES["HalfCheetah-v5"]
    assert resolved.v_max >= high / (
        1 - resolved.discount
    ) and resolved.v_min <= low / (1 - resolved.discount)
    assert (
        sources["v_max"] == "task table (HalfCheetah-v5)" and sources["env"] == "flag"
    )
    config, given = parse_flags(["--env", "HalfCheetah-v5", "--v_max", "3000"])
    resolved, sources = resolve_config(config, given)
    assert resolved.v_max == 3000.0 and sources["v_max"] == "flag"
    assert resolved.v_min == task_defaults("HalfCheetah-v5")["v_min"]
    # The support follows the discount: gamma 0.9 means values ten times the reward, not 100.
    assert (
        task_defaults("Hopper-v5", 0.9)["v_max"]
        < task_defaults("Hopper-v5", 0.99)["v_max"]
    )


def test_config_json_records_every_setting_and_its_source(tmp_path):
    train(
        tiny(tmp_path, v_min=None, v_max=300.0, max_timesteps=200, start_timesteps=200),
        progress=False,
    )
    saved = json.loads((tmp_path / "results" / "tiny" / "config.json").read_text())
    assert (
        saved["v_min"] == task_defaults("Pendulum-v1")["v_min"]
        and saved["v_max"] == 300.0
    )
    assert (
        saved["sources"]["v_min"] == "task table (Pendulum-v1)"
        and saved["sources"]["v_max"] == "flag"
    )
    assert set(saved["sources"]) == {field.name for field in dataclasses.fields(Config)}


def test_the_support_guard_warns_once_on_a_saturating_run(tmp_path, capsys):
    # Pendulum's values lie between about -100 and -1600: a support of [-5, 5] saturates.
    train(
        tiny(tmp_path, v_min=-5.0, v_max=5.0, critic_lr=3e-3, eval_freq=100),
        progress=False,
    )
    warnings = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("warning:")
    ]
    assert len(warnings) == 1, warnings
    assert "within 10% of v_min" in warnings[0] and "--v_min" in warnings[0]


def test_a_diverging_run_stops_in_one_line_and_keeps_its_checkpoint(tmp_path, capsys):
    settings = dict(actor_lr=1e30, critic_lr=1e30, save_freq=200, max_timesteps=1000)
    status = main(
        [
            f"--{k}={v}"
            for k, v in {**dataclasses.asdict(tiny(tmp_path, **settings))}.items()
            if v is not None and not isinstance(v, bool)
        ]
    )
    assert status == 1
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    error = [
        line for line in lines if line.startswith("error")
    ]  # the rest is the progress bar
    assert len(error) == 1 and error[0].startswith(
        "error: training diverged at step"
    ), error
    assert "Traceback" not in "".join(lines)
    checkpoint = tmp_path / "models" / "tiny" / "checkpoint.msgpack"
    raw = flax.serialization.msgpack_restore(checkpoint.read_bytes())
    assert raw["step"] == 200  # the last good one: saved before learning began
