import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Normalizer:
    """Running mean and population variance of observations, merged batch by batch (Chan et al.).

    Immutable: `update` returns a new Normalizer. `count` is a float32 because an int32 would
    overflow on long GPU runs (tens of thousands of samples per step); the merge only needs ratios.
    """
    mean: jax.Array
    var: jax.Array
    count: jax.Array

    EPS = 0.01  # added to the standard deviation, as in FastTD3: constant features stay finite

    @classmethod
    def create(cls, dim):
        return cls(mean=jnp.zeros(dim), var=jnp.ones(dim), count=jnp.zeros(()))

    def update(self, batch):
        """Merge a (n, dim) batch into the running statistics."""
        dim = self.mean.shape[-1]
        if batch.ndim != 2 or batch.shape[1] != dim or batch.shape[0] == 0:
            raise ValueError(f"Normalizer.update needs a non-empty batch of shape (n, {dim}), got {tuple(batch.shape)}")
        batch_count = batch.shape[0]
        batch_mean = jnp.mean(batch, axis=0)
        batch_var = jnp.var(batch, axis=0)  # two-pass inside the batch: no E[x^2] - E[x]^2
        total = self.count + batch_count
        delta = batch_mean - self.mean
        mean = self.mean + delta * (batch_count / total)
        # Sum of squared deviations of the union = both parts' own + the spread between their means.
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * (self.count * batch_count / total)
        return Normalizer(mean=mean, var=m2 / total, count=total)

    def normalize(self, x):
        return (x - self.mean) / (jnp.sqrt(self.var) + self.EPS)
