"""Normalizer: the running statistics equal numpy's over everything seen, at any offset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fasttd3 import Normalizer


def stream(normalizer, batches):
    for batch in batches:
        normalizer = normalizer.update(jnp.asarray(batch))
    return normalizer


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=12),
    offset=st.sampled_from([0.0, 1.0, 1e2, 1e3, 1e4, -1e4]),
    scale=st.sampled_from([1e-2, 1.0, 30.0]),
)
def test_matches_numpy_over_uneven_batches(seed, sizes, offset, scale):
    # float32 holds ~7 digits: a spread below 1e-4 of the offset is lost in the data itself.
    assume(scale >= 1e-4 * abs(offset))
    rng = np.random.default_rng(seed)
    dim = 5
    batches = [
        (offset + scale * rng.normal(size=(n, dim))).astype(np.float32) for n in sizes
    ]
    norm = stream(Normalizer.create(dim), batches)
    everything = np.concatenate(batches).astype(np.float64)
    assert float(norm.count) == sum(sizes)
    np.testing.assert_allclose(
        norm.mean, everything.mean(axis=0), rtol=1e-3, atol=1e-3 * scale
    )
    if len(everything) > 1:
        np.testing.assert_allclose(norm.var, everything.var(axis=0), rtol=1e-3)


def test_first_batch_replaces_the_prior():
    norm = Normalizer.create(3)
    np.testing.assert_array_equal(norm.mean, 0.0)
    np.testing.assert_array_equal(norm.var, 1.0)
    assert float(norm.count) == 0.0
    batch = jnp.array([[1.0, 2.0, 3.0], [3.0, 2.0, 5.0]])
    norm = norm.update(batch)
    np.testing.assert_allclose(norm.mean, [2.0, 2.0, 4.0])
    np.testing.assert_allclose(norm.var, [1.0, 0.0, 1.0])


def test_single_rows_stream_like_welford():
    rng = np.random.default_rng(0)
    data = (1e4 + rng.normal(size=(500, 2))).astype(np.float32)
    norm = stream(Normalizer.create(2), [row[None] for row in data])
    assert float(norm.count) == 500
    np.testing.assert_allclose(norm.var, data.astype(np.float64).var(axis=0), rtol=1e-3)


def test_normalize_uses_population_std_plus_eps():
    norm = Normalizer.create(2).update(jnp.array([[0.0, 5.0], [2.0, 5.0]]))
    out = norm.normalize(jnp.array([[2.0, 5.0]]))
    np.testing.assert_allclose(out, [[1.0 / 1.01, 0.0]], rtol=1e-6)


def test_update_and_normalize_are_jittable():
    batch = jnp.arange(12.0).reshape(4, 3)
    jitted = jax.jit(lambda n, b: n.update(b))(Normalizer.create(3), batch)
    eager = Normalizer.create(3).update(batch)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 2), (4, 5), (3,), (0, 3), (2, 3, 1)])
def test_wrong_batch_shape_raises_before_computing(shape):
    with pytest.raises(
        ValueError, match=r"Normalizer.update needs a non-empty batch of shape \(n, 3\)"
    ):
        Normalizer.create(3).update(jnp.zeros(shape))
