"""The device replay buffer: per-environment rings, and n-step windows that never cross an episode end."""

import jax
import jax.numpy as jnp
import numpy as np

from fasttd3.replay import ReplayBuffer


def filled(rewards, dones, terminated, capacity):
    """A buffer of one environment per row of `rewards`; obs encode (env, time) so samples can be traced."""
    num_envs, steps = rewards.shape
    buffer = ReplayBuffer.create(num_envs, capacity, 1, 1)
    for t in range(steps):
        marker = jnp.asarray([[100 * e + t] for e in range(num_envs)], jnp.float32)
        buffer = buffer.add(
            marker,
            jnp.zeros((num_envs, 1)),
            rewards[:, t],
            marker + 0.5,
            terminated[:, t],
            dones[:, t],
        )
    return buffer


def expected_n_step(rewards, dones, terminated, env, t, n, gamma):
    total, k = 0.0, 0
    while True:
        total += gamma**k * rewards[env, t + k]
        k += 1
        if dones[env, t + k - 1] or k == n:
            return total, k, 1.0 - terminated[env, t + k - 1], t + k - 1


def test_n_step_windows_stop_at_episode_ends():
    rng = np.random.default_rng(0)
    num_envs, steps, n, gamma = 3, 40, 4, 0.9
    rewards = rng.normal(size=(num_envs, steps)).astype(np.float32)
    dones = rng.random((num_envs, steps)) < 0.2
    terminated = dones & (rng.random((num_envs, steps)) < 0.5)
    buffer = filled(
        jnp.asarray(rewards),
        jnp.asarray(dones, jnp.float32),
        jnp.asarray(terminated, jnp.float32),
        64,
    )
    batch = buffer.sample(jax.random.key(1), 3 * 200, n, gamma)
    per_env = 200
    for i in range(len(batch.reward)):
        env, start = divmod(int(batch.obs[i, 0]), 100)
        assert env == i // per_env  # batch_size // num_envs samples from every ring
        assert start <= steps - n  # the whole window was written
        reward, k, bootstrap, last = expected_n_step(
            rewards, dones, terminated, env, start, n, gamma
        )
        np.testing.assert_allclose(batch.reward[i], reward, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batch.discount[i], gamma**k, rtol=1e-6)
        assert float(batch.bootstrap[i]) == bootstrap
        assert (
            float(batch.next_obs[i, 0]) == 100 * env + last + 0.5
        )  # the next obs where the window ends


def test_ring_wraps_and_samples_only_live_slots():
    rewards = jnp.arange(10.0)[None]
    buffer = filled(rewards, jnp.zeros((1, 10)), jnp.zeros((1, 10)), capacity=4)
    assert int(buffer.size) == 4 and int(buffer.position) == 10 % 4
    batch = buffer.sample(jax.random.key(0), 256, 1, 0.99)
    assert set(np.asarray(batch.reward).tolist()) == {6.0, 7.0, 8.0, 9.0}
