from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def funnel(hidden_dim):
    """FastTD3's layer widths: hidden_dim, hidden_dim/2, hidden_dim/4 (1024 -> 512 -> 256 for its critic)."""
    return (hidden_dim, hidden_dim // 2, hidden_dim // 4)


def torch_uniform(fan_in):
    """PyTorch's default nn.Linear initialiser: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), weights and biases alike."""
    bound = fan_in ** -0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class MLP(nn.Module):
    """ReLU layers of the given widths, then a linear output; no LayerNorm (FastTD3 uses none)."""
    hidden_dims: Sequence[int]
    out_dim: int
    out_kernel_init: object = None  # None: PyTorch's default, like the hidden layers
    out_bias_init: object = None

    @nn.compact
    def __call__(self, x):
        for width in self.hidden_dims:
            init = torch_uniform(x.shape[-1])
            x = nn.relu(nn.Dense(width, kernel_init=init, bias_init=init)(x))
        default = torch_uniform(x.shape[-1])
        return nn.Dense(self.out_dim, kernel_init=self.out_kernel_init or default,
                        bias_init=self.out_bias_init or default)(x)


class Actor(nn.Module):
    """Deterministic policy obs -> action in [-1, 1]^act_dim (the env wrapper rescales to its bounds)."""
    action_dim: int
    hidden_dim: int = 256

    @nn.compact
    def __call__(self, obs):
        # A near-zero last layer makes the first actions ~0 everywhere: exploration noise decides early on.
        out = MLP(funnel(self.hidden_dim), self.action_dim,
                  out_kernel_init=nn.initializers.normal(0.01), out_bias_init=nn.initializers.zeros)(obs)
        return jnp.tanh(out)


class Critic(nn.Module):
    """One critic: (obs, action) -> num_outputs (atom logits for C51, or 1 for a scalar Q)."""
    num_outputs: int
    hidden_dim: int = 256

    @nn.compact
    def __call__(self, obs, action):
        return MLP(funnel(self.hidden_dim), self.num_outputs)(jnp.concatenate([obs, action], axis=-1))


class TwinCritic(nn.Module):
    """Two independent critics as one module: parameters stacked on a leading axis of size 2,
    evaluated by a single vmapped (batched) matmul per layer. Output: (2, batch, num_outputs)."""
    num_outputs: int
    hidden_dim: int = 256

    @nn.compact
    def __call__(self, obs, action):
        ensemble = nn.vmap(Critic, variable_axes={"params": 0}, split_rngs={"params": True},
                           in_axes=None, out_axes=0, axis_size=2)
        return ensemble(self.num_outputs, self.hidden_dim, name="critics")(obs, action)
