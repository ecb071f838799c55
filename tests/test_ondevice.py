"""The on-device loop (chapter 10): no host transfer inside the scan, the library's own
update, one device and two agreeing, and the command line's files, errors and resume."""

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import flax.serialization
import jax
import numpy as np
import pytest

from fasttd3.cli import main
from fasttd3.ondevice import (
    device_env_sizes,
    device_steps,
    env_reset,
    make_device_env,
    start_carry,
)
from fasttd3.training import Config, Trainer, explore, learn_step, store

SMALL = dict(env="InvertedPendulum-v5", num_envs=4, hidden_dim=16, batch_size=32,
             buffer_size=4_000, start_timesteps=100, num_updates=2, v_min=0.0,
             v_max=110.0)  # fmt: skip
HOST_OPERATIONS = ("callback", "infeed", "outfeed", "send(", "recv(")


@pytest.fixture(scope="module")
def loop():
    """A small loop, compiled once, after 50 vector steps (learning has begun)."""
    config = Config(**SMALL)
    env = make_device_env(config.env)
    obs_dim, action_dim = device_env_sizes(env)
    trainer = Trainer(config, obs_dim, action_dim)
    reset = jax.jit(functools.partial(env_reset, env), static_argnums=1)
    carry = start_carry(
        trainer.init(jax.random.key(0), obs_dim, action_dim),
        reset(jax.random.key(1), config.num_envs),
    )
    steps = jax.jit(
        functools.partial(device_steps, trainer.config, trainer.agent, env),
        static_argnums=1,
    )
    for _ in range(50):  # one vector step per call: a single program to compile
        carry = steps(carry, 1)
    return trainer, steps, carry


def test_the_scan_makes_no_host_transfer(loop):
    _, steps, carry = loop
    with jax.transfer_guard("disallow"):
        jax.block_until_ready(steps(carry, 1))
    program = steps.lower(carry, 1).as_text()
    assert [op for op in HOST_OPERATIONS if op in program] == []
    assert int(carry.train.metric_sums["updates"]) > 0


def test_a_device_step_makes_the_library_update(loop):
    trainer, steps, carry = loop
    config, agent = trainer.config, trainer.agent
    after = steps(carry, 1).train

    # The same vector step from the library's functions, one by one.
    state = jax.jit(functools.partial(store, config))(carry.train, *carry.pending)
    state, _ = jax.jit(functools.partial(explore, config, agent))(
        state, carry.env.physics.obs
    )
    key, _ = jax.random.split(state.key)  # the warm-up's draw, as in the loop
    state = jax.jit(functools.partial(learn_step, config, agent))(
        state.replace(key=key)
    )
    for ours, library in zip(
        jax.tree.leaves(after.agent), jax.tree.leaves(state.agent), strict=True
    ):
        np.testing.assert_allclose(ours, library, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(after.buffer.obs, state.buffer.obs)


TWO_DEVICES = textwrap.dedent(
    """
    import functools, json, jax, numpy as np
    from fasttd3.ondevice import (carry_sharding, device_env_sizes, device_mesh,
                                  device_steps, env_reset, make_device_env,
                                  start_carry)
    from fasttd3.training import Config, Trainer

    config = Config(**json.loads('''SMALL'''))
    env = make_device_env(config.env)
    obs_dim, action_dim = device_env_sizes(env)
    trainer = Trainer(config, obs_dim, action_dim)
    results = []
    for devices in (jax.devices()[:1], jax.devices()[:2]):
        carry = start_carry(
            trainer.init(jax.random.key(0), obs_dim, action_dim),
            jax.jit(functools.partial(env_reset, env), static_argnums=1)(
                jax.random.key(1), config.num_envs),
        )
        sharding = carry_sharding(carry, device_mesh(config.num_envs, devices))
        steps = jax.jit(functools.partial(device_steps, config, trainer.agent, env),
                        static_argnums=1, out_shardings=sharding)
        carry = steps(jax.device_put(carry, sharding), 100)
        results.append(jax.device_get(carry.train))
    one, two = results
    diff = max(float(np.max(np.abs(a - b))) for a, b in
               zip(jax.tree.leaves(one.agent), jax.tree.leaves(two.agent)))
    scale = max(float(np.max(np.abs(a))) for a in jax.tree.leaves(one.agent))
    print(json.dumps({"devices": len(jax.devices()), "max_diff": diff, "scale": scale,
                      "updates": float(one.metric_sums["updates"]),
                      "normalizer_diff": float(np.max(np.abs(one.normalizer.mean
                                                             - two.normalizer.mean)))}))
    """
).replace("SMALL", json.dumps(SMALL))


def test_one_and_two_devices_give_the_same_networks(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print(measured)  # the measured agreement, shown with pytest -s
    assert measured["devices"] == 2 and measured["updates"] > 0
    # Float reassociation only: the sums over the batch are split in two.
    assert measured["max_diff"] <= 1e-4 * max(measured["scale"], 1.0)
    assert measured["normalizer_diff"] <= 1e-4


def test_mjx_refuses_a_task_it_does_not_have(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--backend", "mjx", "--env", "Pendulum-v1"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: --backend mjx has no 'Pendulum-v1'; it runs ")
    assert list(tmp_path.iterdir()) == []


def run_flags(tmp_path, name, max_timesteps=1200):
    flags = [f"--{k}={v}" for k, v in SMALL.items()]
    return [*flags, "--backend", "mjx", "--max_timesteps", str(max_timesteps), "--eval_freq",
            "400", "--eval_episodes", "2", "--save_freq", "400", "--run_name", name,
            "--results_dir", str(tmp_path / "results"),
            "--models_dir", str(tmp_path / "models")]  # fmt: skip


def metric_rows(tmp_path, name):
    text = (tmp_path / "results" / name / "metrics.csv").read_text().splitlines()
    keep = lambda row: [v for i, v in enumerate(row.split(",")) if i not in (2, 3)]
    return text[0].split(","), [keep(row) for row in text[1:]]


def test_the_command_line_resumes_exactly_after_kill_9(tmp_path):
    command = [sys.executable, "-m", "fasttd3"]
    plain = subprocess.run(
        [*command, *run_flags(tmp_path, "plain")], capture_output=True, timeout=900
    )
    assert plain.returncode == 0, plain.stderr[-2000:]
    header, rows = metric_rows(tmp_path, "plain")
    assert header[:4] == ["step", "eval_return", "wall_time", "steps_per_second"]
    assert [int(row[0]) for row in rows] == [400, 800, 1200]

    # Killed long before its end (a resume may shorten the run: no LR schedule).
    killed = subprocess.Popen(
        [*command, *run_flags(tmp_path, "killed", max_timesteps=1_000_000)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = tmp_path / "models" / "killed" / "checkpoint.msgpack"

    def saved_step():
        try:
            return flax.serialization.msgpack_restore(checkpoint.read_bytes())["step"]
        except (OSError, ValueError, KeyError):
            return 0

    while saved_step() < 400 and killed.poll() is None:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL and saved_step() >= 400
    resumed = subprocess.run(
        [*command, *run_flags(tmp_path, "killed"), "--resume"],
        capture_output=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert metric_rows(tmp_path, "killed") == (header, rows)


def test_devicebench_measures_both_loops_in_fresh_processes(tmp_path):
    """`python -m fasttd3.devicebench` (chapter 10's CPU comparison), at one small size:
    a row per loop, each with a speed, a start-up that contains its compiling, and the
    process's memory."""
    from fasttd3.devicebench import run_devicebench

    out = tmp_path / "report.json"
    assert (
        run_devicebench(["--num_envs", "2", "--seconds", "0.3", "--out", str(out)]) == 0
    )
    report = json.loads(out.read_text())
    assert [(row["loop"], row["num_envs"]) for row in report["rows"]] == [
        ("host", 2),
        ("device", 2),
    ]
    for row in report["rows"]:
        assert row["steps_per_second"] > 0
        assert 0 < row["compile_seconds"] <= row["startup_seconds"]
        assert row["peak_memory_mib"] > 100  # Python, JAX and a 1M-transition buffer
    assert report["task"] == "HalfCheetah-v5"
