"""The benchmark's own pieces: listener removal on any jax, the copy check, the
one-program design (the same algorithm as Trainer.step), the plans and the command line,
and the step counter that tools/compare_td3_jax.py relies on."""

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fasttd3 import bench
from fasttd3.training import Config, Trainer, Transition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import compare_td3_jax  # noqa: E402


def test_compile_counter_without_unregister(monkeypatch):
    # jax 0.7.2 (Colab's) has no jax.monitoring.unregister_event_duration_listener
    monkeypatch.delattr(
        jax.monitoring, "unregister_event_duration_listener", raising=False
    )
    x = jnp.ones(7)
    with bench.CompileCounter() as counter:
        jax.jit(lambda x: x * 3.0 + 1.0)(x)
    assert counter.count == 1, counter.count
    jax.jit(lambda x: x * 5.0 - 2.0)(x)  # after the block: not counted
    assert counter.count == 1


def test_ring_copies_sees_a_copy():
    class Rings:  # what ring_copies reads: the (num_envs, capacity) shape
        reward = jnp.zeros((1, 1000))

    in_place = jax.jit(lambda ring: ring.at[:, 3].set(1.0), donate_argnums=0)
    both = jax.jit(lambda ring: (ring.at[:, 3].set(1.0), ring))  # keeps the old one
    ring = jnp.zeros((1, 1000))
    assert bench.ring_copies(in_place.lower(ring).compile(), Rings) == 0
    assert bench.ring_copies(both.lower(ring).compile(), Rings) >= 1


@pytest.mark.parametrize("guarded_store", [False, True])
def test_two_programs_equal_one_program(guarded_store):
    # Trainer.step (act, then learn) against the one-program designs: the same run
    config = Config(hidden_dim=8, batch_size=4, buffer_size=16, num_updates=2,
                    num_atoms=11)  # fmt: skip
    trainer = Trainer(config, 3, 2)
    rng = np.random.default_rng(0)
    one = trainer.init(jax.random.key(0), 3, 2)
    two = trainer.init(jax.random.key(0), 3, 2)
    fused = bench.one_program(trainer, guarded_store=guarded_store)
    for _ in range(4):
        obs = rng.normal(size=(1, 3)).astype(np.float32)
        transition = Transition(obs, np.zeros((1, 2), np.float32), np.ones(1, np.float32),
                                obs, np.zeros(1, np.float32), np.zeros(1, bool))  # fmt: skip
        one, action_one = fused(one, transition, obs)
        two, action_two = trainer.step(two, transition, obs, learn=True)
        np.testing.assert_array_equal(action_one, action_two)
    leaves = lambda state: jax.tree.leaves(
        state.replace(key=jax.random.key_data(state.key))
    )
    for a, b in zip(leaves(one), leaves(two)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_guarded_store_copies_no_ring():
    # One update per call: unguarded, XLA copies replay rings; the lax.cond prevents it
    config = Config(hidden_dim=8, batch_size=4, buffer_size=64, num_updates=1,
                    num_atoms=11)  # fmt: skip
    trainer = Trainer(config, 3, 2)
    state = trainer.init(jax.random.key(0), 3, 2)
    obs = np.zeros((1, 3), np.float32)
    zero = np.zeros(1, np.float32)
    transition = Transition(obs, np.zeros((1, 2), np.float32), zero, obs, zero,
                            np.zeros(1, bool))  # fmt: skip
    copies = {
        guarded: bench.ring_copies(
            bench.one_program(trainer, guarded).lower(state, transition, obs).compile(),
            state.buffer,
        )
        for guarded in (False, True)
    }
    assert copies[False] >= 1 and copies[True] == 0, copies


@pytest.mark.parametrize("program", ["td3-jax", "fasttd3"])
def test_port_commands(program):
    target = compare_td3_jax.program_command(program, compare_td3_jax.COMMANDS["basic"],
                                             "/port", 1000, "/tmp/x")  # fmt: skip
    assert "--eval_freq" in target and "--start_timesteps" in target
    assert (target[0] == "/port/main.py") == (program == "td3-jax")


def test_steprate_counts_mujoco_steps(tmp_path):
    script = tmp_path / "steps.py"
    script.write_text(
        "import sys, gymnasium as gym\n"
        "env = gym.make('HalfCheetah-v5')\n"
        "env.reset(seed=0)\n"
        "for _ in range(int(sys.argv[1])):\n"
        "    env.step(env.action_space.sample())\n"
    )
    counts = tmp_path / "counts.txt"
    subprocess.run([sys.executable, str(ROOT / "tools/steprate.py"), str(counts),
                    "--every", "0", "--", str(script), "37"], check=True)  # fmt: skip
    rows = compare_td3_jax.read_counts(counts)
    assert [count for count, _ in rows] == list(range(1, 38))
    assert all(t1 >= t0 for (_, t0), (_, t1) in zip(rows, rows[1:]))


def test_profile_update_sorts_xla_operations():
    import profile_update

    kinds = {
        "ynn_fusion.36": "matmul (YNNPACK)",
        "dot.18": "matmul (XLA dot)",
        "multiply_add_fusion.12": "element-wise fusions",
        "wrapped_exponential": "element-wise fusions",
        "transpose_copy_fusion.3": "copies and transposes",
        "copy.208": "copies and transposes",
        "wrapped_scatter": "scatter and gather",
        "bitcast_gather_fusion.1": "scatter and gather",
        "cond.60": "control flow",
        "while.2": "control flow",
    }
    assert {name: profile_update.kind_of(name) for name in kinds} == kinds
    hlo = (
        "  %copy.1 = u32[4]{0} copy(%key)\n"
        "  %copy.2 = f32[2,256,256]{2,1,0} copy(%x)\n"
        "  %copy.3 = s32[] copy(%n)\n"
        "  %add.4 = f32[] add(%a, %b)\n"
    )
    assert profile_update.copy_instructions(hlo) == (3, 2)


def test_both_plans_measure_the_default_size():
    # fused_vs_per_update and the printed last line need batch 256, width 256
    for plan in (bench.Plan(), bench.QUICK):
        assert (256, 256) in plan.update_sizes()
    assert bench.QUICK.per_update_everywhere is False


def test_the_command_line_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "fasttd3.bench", "--help"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "--quick" in result.stdout and "--out" in result.stdout
