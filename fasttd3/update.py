import dataclasses
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from fasttd3.c51 import categorical_cross_entropy, check_support, expected_value, make_support, project_distribution
from fasttd3.networks import Actor, TwinCritic


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """The algorithm's settings, named as the command-line flags. Frozen, so jit can treat it as static."""
    hidden_dim: int = 256
    distributional: bool = True
    num_atoms: int = 101
    v_min: float = -250.0
    v_max: float = 250.0
    tau: float = 0.005
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_freq: int = 2
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    weight_decay: float = 0.1
    use_cdq: bool = True
    use_target_actor: bool = False


class Batch(NamedTuple):
    """A batch of transitions; `discount` is per sample (gamma ** n for an n-step return)."""
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    bootstrap: jax.Array  # 1.0 where the target may look past next_obs (not terminated), else 0.0
    discount: jax.Array


@flax.struct.dataclass
class AgentState:
    """Everything that changes during learning: an immutable pytree, replaced by each update."""
    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    target_actor_params: Any  # used only by TD3's target actor (use_target_actor=True)
    actor_opt_state: Any
    critic_opt_state: Any
    num_updates: jax.Array  # gradient updates done so far; decides the delayed actor steps


@dataclasses.dataclass(frozen=True)
class Agent:
    """What does not change: the networks' definitions, the optimizers and the settings."""
    config: AgentConfig
    actor: Actor
    critic: TwinCritic
    actor_optimizer: optax.GradientTransformation
    critic_optimizer: optax.GradientTransformation


def make_agent(action_dim, config=AgentConfig(), actor_lr=None, critic_lr=None):
    """Build the static half of the agent. Learning rates default to the config's; pass an
    optax schedule instead of a number to decay them."""
    if config.distributional:
        check_support(config.v_min, config.v_max, config.num_atoms)
    critic_outputs = config.num_atoms if config.distributional else 1
    return Agent(
        config=config,
        actor=Actor(action_dim, config.hidden_dim),
        critic=TwinCritic(critic_outputs, config.hidden_dim),
        # AdamW as in FastTD3: decoupled weight decay, no gradient clipping.
        actor_optimizer=optax.adamw(actor_lr or config.actor_lr, weight_decay=config.weight_decay),
        critic_optimizer=optax.adamw(critic_lr or config.critic_lr, weight_decay=config.weight_decay),
    )


def init_agent_state(agent, key, obs_dim):
    actor_key, critic_key = jax.random.split(key)
    obs = jnp.zeros((1, obs_dim))
    action = jnp.zeros((1, agent.actor.action_dim))
    actor_params = agent.actor.init(actor_key, obs)
    critic_params = agent.critic.init(critic_key, obs, action)
    copy = lambda tree: jax.tree.map(jnp.copy, tree)  # own buffers, so the state can be donated
    return AgentState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=copy(critic_params),  # targets start as exact copies
        target_actor_params=copy(actor_params),
        actor_opt_state=agent.actor_optimizer.init(actor_params),
        critic_opt_state=agent.critic_optimizer.init(critic_params),
        num_updates=jnp.zeros((), jnp.int32),
    )


def critic_values(agent, critic_out):
    """Scalar Q from the critic's output: the mean of the categorical distribution, or the output itself."""
    cfg = agent.config
    if cfg.distributional:
        support = make_support(cfg.v_min, cfg.v_max, cfg.num_atoms)
        return expected_value(jax.nn.softmax(critic_out, axis=-1), support)
    return critic_out[..., 0]


def smoothed_next_action(agent, actor_params, next_obs, key):
    """Target policy smoothing: the policy's action plus clipped Gaussian noise, kept in [-1, 1]."""
    cfg = agent.config
    action = agent.actor.apply(actor_params, next_obs)
    noise = jnp.clip(cfg.policy_noise * jax.random.normal(key, action.shape), -cfg.noise_clip, cfg.noise_clip)
    return jnp.clip(action + noise, -1.0, 1.0)


def critic_targets(agent, state, batch, key):
    """What each of the two online critics is trained towards, shape (2, B, N) for C51 or (2, B)."""
    cfg = agent.config
    # FastTD3 takes next actions from the online actor; TD3 from a slowly moving target actor.
    actor_params = state.target_actor_params if cfg.use_target_actor else state.actor_params
    next_action = smoothed_next_action(agent, actor_params, batch.next_obs, key)
    next_out = agent.critic.apply(state.target_critic_params, batch.next_obs, next_action)
    if cfg.distributional:
        def project(logits):
            return project_distribution(jax.nn.softmax(logits, axis=-1), batch.reward, batch.bootstrap,
                                        batch.discount, cfg.v_min, cfg.v_max)
        projected = jax.vmap(project)(next_out)  # both target critics, projected
        if not cfg.use_cdq:
            return projected
        # Clipped double Q on distributions: per sample, keep the projected target with the smaller mean.
        values = expected_value(projected, make_support(cfg.v_min, cfg.v_max, cfg.num_atoms))
        chosen = jnp.where((values[0] < values[1])[:, None], projected[0], projected[1])
        return jnp.stack([chosen, chosen])
    next_q = next_out[..., 0]
    if cfg.use_cdq:
        next_q = jnp.broadcast_to(jnp.min(next_q, axis=0), next_q.shape)
    return batch.reward + batch.bootstrap * batch.discount * next_q


def critic_loss(critic_params, agent, batch, targets):
    """Cross-entropy (C51) or squared error (scalar), averaged over the batch, summed over both critics."""
    out = agent.critic.apply(critic_params, batch.obs, batch.action)
    if agent.config.distributional:
        per_critic = jnp.mean(categorical_cross_entropy(targets, out), axis=-1)
    else:
        per_critic = jnp.mean((out[..., 0] - jax.lax.stop_gradient(targets)) ** 2, axis=-1)
    return jnp.sum(per_critic), jnp.mean(critic_values(agent, out))


def actor_loss(actor_params, agent, critic_params, obs):
    """-mean Q(s, pi(s)), with Q the smaller of the two critics (or their mean without clipped double Q)."""
    action = agent.actor.apply(actor_params, obs)
    q = critic_values(agent, agent.critic.apply(critic_params, obs, action))
    q = jnp.min(q, axis=0) if agent.config.use_cdq else jnp.mean(q, axis=0)
    return -jnp.mean(q)


def optimizer_step(optimizer, params, opt_state, grads):
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def update(agent, state, batch, key):
    """One gradient update on one batch: the critics always; the actor (and TD3's targets) on every
    policy_freq-th call, after the critics, on the same batch. Pure: returns a new state and metrics."""
    cfg = agent.config
    targets = critic_targets(agent, state, batch, key)
    (loss_c, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(
        state.critic_params, agent, batch, targets)
    critic_params, critic_opt_state = optimizer_step(
        agent.critic_optimizer, state.critic_params, state.critic_opt_state, grads)
    state = state.replace(critic_params=critic_params, critic_opt_state=critic_opt_state)
    if not cfg.use_target_actor:
        # FastTD3: the target critic follows the online one after every critic step.
        state = state.replace(target_critic_params=optax.incremental_update(
            state.critic_params, state.target_critic_params, cfg.tau))

    def actor_step(state):
        loss_a, grads = jax.value_and_grad(actor_loss)(state.actor_params, agent, state.critic_params, batch.obs)
        actor_params, actor_opt_state = optimizer_step(
            agent.actor_optimizer, state.actor_params, state.actor_opt_state, grads)
        state = state.replace(actor_params=actor_params, actor_opt_state=actor_opt_state)
        if cfg.use_target_actor:
            # TD3: both targets move only on the delayed steps.
            state = state.replace(
                target_actor_params=optax.incremental_update(state.actor_params, state.target_actor_params, cfg.tau),
                target_critic_params=optax.incremental_update(state.critic_params, state.target_critic_params, cfg.tau))
        return state, loss_a

    def skip_actor(state):
        return state, jnp.float32(jnp.nan)  # no actor loss exists on a critic-only step

    # (i + 1) % policy_freq == 0 is the reference's `i % 2 == 1` for policy_freq = 2.
    is_actor_step = (state.num_updates + 1) % cfg.policy_freq == 0
    state, loss_a = jax.lax.cond(is_actor_step, actor_step, skip_actor, state)
    state = state.replace(num_updates=state.num_updates + 1)
    return state, {"critic_loss": loss_c, "actor_loss": loss_a, "q_mean": q_mean}
