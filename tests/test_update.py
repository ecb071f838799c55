"""One update on a fixed batch: the critic learns, the actor moves only on delayed steps, and the
targets follow FastTD3's (or TD3's) Polyak rule."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fasttd3 import (
    AgentConfig,
    Batch,
    critic_targets,
    init_agent_state,
    make_agent,
    project_distribution,
    update,
)

OBS_DIM, ACTION_DIM, BATCH = 5, 2, 64
SMALL = AgentConfig(hidden_dim=32, num_atoms=21, v_min=-10.0, v_max=10.0, tau=0.1)


def fixed_batch(seed=0):
    keys = jax.random.split(jax.random.key(seed), 4)
    return Batch(
        obs=jax.random.normal(keys[0], (BATCH, OBS_DIM)),
        action=jax.random.uniform(keys[1], (BATCH, ACTION_DIM), minval=-1, maxval=1),
        reward=jax.random.normal(keys[2], (BATCH,)),
        next_obs=jax.random.normal(keys[3], (BATCH, OBS_DIM)),
        bootstrap=jnp.ones(BATCH).at[:8].set(0.0),
        discount=jnp.full(BATCH, 0.99),
    )


def setup(config):
    agent = make_agent(ACTION_DIM, config)
    return (
        agent,
        init_agent_state(agent, jax.random.key(0), OBS_DIM),
        jax.jit(functools.partial(update, agent)),
    )


def trees_equal(a, b):
    return all(
        bool(jnp.array_equal(x, y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        dataclasses.replace(SMALL, distributional=False),
        dataclasses.replace(SMALL, use_cdq=False),
        dataclasses.replace(SMALL, use_target_actor=True, tau=0.005),
    ],
    ids=["c51", "scalar", "no-cdq", "td3-targets"],
)
def test_critic_loss_falls_on_a_fixed_batch(config):
    # A larger step than the default 3e-4 so that 150 updates show a clear fall. The C51 loss is a
    # cross-entropy: it cannot fall below the entropy of the (wide) targets, about 2 x 2.8 here.
    agent, state, step = setup(dataclasses.replace(config, critic_lr=3e-3))
    batch = fixed_batch()
    losses = []
    for i in range(150):
        state, metrics = step(state, batch, jax.random.key(i))
        losses.append(float(metrics["critic_loss"]))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-10:]) < 0.92 * np.mean(losses[:10])


def test_actor_changes_only_on_delayed_steps():
    agent, state, step = setup(dataclasses.replace(SMALL, policy_freq=2))
    batch = fixed_batch()
    for i in range(6):
        before = state.actor_params
        state, metrics = step(state, batch, jax.random.key(i))
        if i % 2 == 1:  # the reference's `i % policy_frequency == 1`
            assert not trees_equal(before, state.actor_params), (
                f"actor should move on update {i}"
            )
            assert np.isfinite(float(metrics["actor_loss"]))
        else:
            assert trees_equal(before, state.actor_params), (
                f"actor should not move on update {i}"
            )
            assert np.isnan(float(metrics["actor_loss"]))
    assert int(state.num_updates) == 6


def test_policy_freq_three():
    agent, state, step = setup(dataclasses.replace(SMALL, policy_freq=3))
    moved = []
    for i in range(6):
        before = state.actor_params
        state, _ = step(state, fixed_batch(), jax.random.key(i))
        moved.append(not trees_equal(before, state.actor_params))
    assert moved == [False, False, True, False, False, True]


def test_target_critic_is_polyak_average_after_every_critic_step():
    agent, state, step = setup(SMALL)
    batch = fixed_batch()
    for i in range(3):  # both kinds of step: critic only, and critic + actor
        old_target = state.target_critic_params
        state, _ = step(state, batch, jax.random.key(i))
        expected = jax.tree.map(
            lambda online, old: SMALL.tau * online + (1 - SMALL.tau) * old,
            state.critic_params,
            old_target,
        )
        for got, want in zip(
            jax.tree.leaves(state.target_critic_params), jax.tree.leaves(expected)
        ):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_targets_start_as_copies_and_td3_moves_them_only_on_delayed_steps():
    config = dataclasses.replace(SMALL, use_target_actor=True)
    agent, state, step = setup(config)
    assert trees_equal(state.target_critic_params, state.critic_params)
    assert trees_equal(state.target_actor_params, state.actor_params)
    batch = fixed_batch()
    for i in range(4):
        before = state
        state, _ = step(state, batch, jax.random.key(i))
        if i % 2 == 0:
            assert trees_equal(before.target_critic_params, state.target_critic_params)
            assert trees_equal(before.target_actor_params, state.target_actor_params)
        else:
            expected = optax.incremental_update(
                state.actor_params, before.target_actor_params, config.tau
            )
            for got, want in zip(
                jax.tree.leaves(state.target_actor_params), jax.tree.leaves(expected)
            ):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
            assert not trees_equal(
                before.target_critic_params, state.target_critic_params
            )


def test_clipped_double_q_picks_the_projected_target_with_the_smaller_mean():
    agent, state, _ = setup(SMALL)
    # Make the two target critics differ a lot, so the choice matters.
    state = state.replace(
        target_critic_params=jax.tree.map(
            lambda p: p.at[1].multiply(3.0), state.target_critic_params
        )
    )
    batch = fixed_batch()
    key = jax.random.key(7)
    targets = critic_targets(agent, state, batch, key)
    no_cdq = critic_targets(
        make_agent(ACTION_DIM, dataclasses.replace(SMALL, use_cdq=False)),
        state,
        batch,
        key,
    )
    support = jnp.linspace(SMALL.v_min, SMALL.v_max, SMALL.num_atoms)
    means = jnp.sum(
        no_cdq * support, axis=-1
    )  # (2, B): means of both projected targets
    chosen = jnp.where((means[0] < means[1])[:, None], no_cdq[0], no_cdq[1])
    np.testing.assert_allclose(targets[0], chosen, atol=1e-7)
    np.testing.assert_allclose(targets[1], chosen, atol=1e-7)
    assert bool(jnp.any(means[0] < means[1])) and bool(jnp.any(means[0] > means[1]))
    np.testing.assert_allclose(targets.sum(axis=-1), 1.0, atol=1e-5)


def test_terminal_targets_ignore_the_next_state():
    agent, state, _ = setup(SMALL)
    batch = fixed_batch()
    targets = critic_targets(agent, state, batch, jax.random.key(0))
    terminal = batch.bootstrap == 0
    expected = project_distribution(
        jnp.full((int(terminal.sum()), SMALL.num_atoms), 1.0 / SMALL.num_atoms),
        batch.reward[terminal],
        batch.bootstrap[terminal],
        0.99,
        SMALL.v_min,
        SMALL.v_max,
    )
    np.testing.assert_allclose(targets[0][terminal], expected, atol=1e-6)


def test_make_agent_rejects_a_bad_support():
    with pytest.raises(ValueError, match="v_min must be smaller than v_max"):
        make_agent(ACTION_DIM, dataclasses.replace(SMALL, v_min=5.0, v_max=5.0))
