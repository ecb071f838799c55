import jax
import jax.numpy as jnp


def check_support(v_min, v_max, num_atoms):
    """Fail fast, before any array work, on a support that cannot hold a distribution."""
    if int(num_atoms) < 2:
        raise ValueError(f"num_atoms must be at least 2 (a support needs two ends), got {num_atoms}")
    if not float(v_min) < float(v_max):
        raise ValueError(f"v_min must be smaller than v_max, got v_min={v_min} and v_max={v_max}")


def make_support(v_min, v_max, num_atoms):
    """The fixed atoms z_0 < ... < z_{N-1} that the critic puts probability on."""
    check_support(v_min, v_max, num_atoms)
    return jnp.linspace(v_min, v_max, num_atoms)


def expected_value(probs, support):
    """Q = sum_j p_j z_j: the scalar value a categorical distribution stands for."""
    return jnp.sum(probs * support, axis=-1)


def project_distribution(probs, rewards, bootstrap, discount, v_min, v_max):
    """Project the shifted distribution r + bootstrap * discount * Z back onto the support.

    probs: (B, N) probabilities over linspace(v_min, v_max, N); rewards, bootstrap: (B,);
    discount: scalar or (B,). v_min and v_max are Python numbers (the support is static).
    Atom i receives sum_j p_j * max(0, 1 - |b_j - i|), so every row keeps its total mass.
    """
    num_atoms = probs.shape[-1]
    check_support(v_min, v_max, num_atoms)
    delta_z = (v_max - v_min) / (num_atoms - 1)
    support = jnp.linspace(v_min, v_max, num_atoms, dtype=probs.dtype)
    scale = (jnp.asarray(bootstrap, probs.dtype) * jnp.asarray(discount, probs.dtype))[..., None]
    target_atoms = jnp.clip(rewards[..., None] + scale * support, v_min, v_max)
    # b_j, a real number in [0, N - 1]; the clip guards against float32 rounding just past either end.
    position = jnp.clip((target_atoms - v_min) / delta_z, 0, num_atoms - 1)
    # Pair each b_j with the atoms `lower` and `lower + 1` around it. Capping `lower` at N - 2
    # gives b_j = N - 1 the pair (N - 2, N - 1) with all its mass on the top atom: no index
    # ever leaves the support and no mass is dropped, on an atom or at either end.
    lower = jnp.clip(jnp.floor(position), 0, num_atoms - 2)
    upper_weight = position - lower
    lower_index = lower.astype(jnp.int32)
    rows = jnp.arange(probs.shape[0])[:, None]
    projected = jnp.zeros_like(probs)
    # Scatter-add, not assignment: several b_j can share a neighbour (clipping makes that common).
    projected = projected.at[rows, lower_index].add(probs * (1.0 - upper_weight))
    projected = projected.at[rows, lower_index + 1].add(probs * upper_weight)
    return projected


def categorical_cross_entropy(target_probs, logits):
    """-sum_i target_i log softmax(logits)_i per row: the C51 critic loss (targets carry no gradient)."""
    return -jnp.sum(jax.lax.stop_gradient(target_probs) * jax.nn.log_softmax(logits, axis=-1), axis=-1)
