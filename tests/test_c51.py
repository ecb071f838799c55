"""The C51 projection: mass conservation on every edge case, agreement with a literal loop and with
the reference FastTD3 (PyTorch) projection, and clear errors on a bad support. Every projection test
runs for both formulations (method="scatter" and method="dense"), which must also agree with each
other."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttd3 import categorical_cross_entropy, make_support, project_distribution
from fasttd3.c51 import PROJECTION_METHODS, projection_method, shifted_atoms

METHODS = ["scatter", "dense"]


def loop_projection(probs, rewards, bootstrap, discount, v_min, v_max):
    """The definition, one atom at a time: atom i receives sum_j p_j max(0, 1 - |b_j - i|)."""
    batch, n = probs.shape
    discount = np.broadcast_to(np.asarray(discount, np.float64), (batch,))
    z = np.linspace(v_min, v_max, n)
    dz = (v_max - v_min) / (n - 1)
    out = np.zeros((batch, n))
    for row in range(batch):
        for j in range(n):
            t = min(
                max(rewards[row] + bootstrap[row] * discount[row] * z[j], v_min), v_max
            )
            b = (t - v_min) / dz
            for i in range(n):
                out[row, i] += probs[row, j] * max(0.0, 1.0 - abs(b - i))
    return out


def reference_projection(probs, rewards, bootstrap, discount, v_min, v_max):
    """NumPy port of the reference FastTD3 projection after its fix (issue 29 / PR 30): floor and
    ceil, and on an integer b the lower index moves down (or the upper up at b = 0), both masks
    computed from the original floor; index_add_ accumulates."""
    batch, n = probs.shape
    probs = np.asarray(probs, np.float32)
    discount = np.broadcast_to(np.asarray(discount, np.float32), (batch,))
    z = np.linspace(v_min, v_max, n, dtype=np.float32)
    dz = np.float32((v_max - v_min) / (n - 1))
    target = np.clip(
        rewards[:, None] + bootstrap[:, None] * discount[:, None] * z, v_min, v_max
    ).astype(np.float32)
    # float32 rounding can put b a hair outside [0, n - 1], where the PyTorch code would index out of
    # bounds; the oracle keeps it inside.
    b = np.clip((target - np.float32(v_min)) / dz, 0, n - 1)
    lower, upper = np.floor(b).astype(np.int64), np.ceil(b).astype(np.int64)
    on_atom = lower == upper
    lower_mask = on_atom & (lower > 0)
    upper_mask = on_atom & (lower == 0)
    lower = np.where(lower_mask, lower - 1, lower)
    upper = np.where(upper_mask, upper + 1, upper)
    out = np.zeros_like(probs)
    rows = np.repeat(np.arange(batch)[:, None], n, axis=1)
    np.add.at(out, (rows, lower), probs * (upper - b))
    np.add.at(out, (rows, upper), probs * (b - lower))
    return out


def random_probs(rng, batch, n):
    logits = rng.normal(size=(batch, n)) * 2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


EDGE_CASES = {
    # name: (rewards, bootstrap, discount, v_min, v_max, num_atoms)
    "targets exactly on atoms": (
        [0.0, 1.0, -3.0, 2.0],
        [1, 1, 1, 1],
        1.0,
        -10.0,
        10.0,
        21,
    ),
    "reward zero, discount one (identity)": ([0.0, 0.0], [1, 1], 1.0, -5.0, 5.0, 11),
    "clipped above v_max": ([50.0, 9.5, 1e6], [1, 1, 1], 0.99, -10.0, 10.0, 51),
    "clipped below v_min": ([-50.0, -9.5, -1e6], [1, 1, 1], 0.99, -10.0, 10.0, 51),
    "bootstrap zero (terminal)": (
        [0.3, -10.0, 10.0, 4.0],
        [0, 0, 0, 0],
        0.99,
        -10.0,
        10.0,
        101,
    ),
    "reward exactly v_max, terminal": ([10.0, -10.0], [0, 0], 0.99, -10.0, 10.0, 5),
    "two atoms": ([0.5, -0.5, 3.0], [1, 0, 1], 0.9, -1.0, 1.0, 2),
    "discount zero": ([0.25, 1.0], [1, 1], 0.0, -1.0, 1.0, 9),
    "FastTD3 default support": (
        [1.0, 250.0, -250.0, 2.5],
        [1, 1, 0, 1],
        0.99,
        -250.0,
        250.0,
        101,
    ),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", EDGE_CASES, ids=list(EDGE_CASES))
def test_edge_cases_conserve_mass_and_match_loop_and_reference(case, method):
    rewards, bootstrap, discount, v_min, v_max, n = EDGE_CASES[case]
    rewards = np.asarray(rewards, np.float32)
    bootstrap = np.asarray(bootstrap, np.float32)
    probs = random_probs(np.random.default_rng(0), len(rewards), n)
    out = np.asarray(
        project_distribution(
            jnp.asarray(probs),
            jnp.asarray(rewards),
            jnp.asarray(bootstrap),
            discount,
            v_min,
            v_max,
            method=method,
        )
    )
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert (out >= -1e-7).all()
    np.testing.assert_allclose(
        out,
        loop_projection(probs, rewards, bootstrap, discount, v_min, v_max),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        out,
        reference_projection(probs, rewards, bootstrap, discount, v_min, v_max),
        atol=5e-5,
    )


@pytest.mark.parametrize("method", METHODS)
def test_terminal_puts_all_mass_around_the_reward(method):
    probs = jnp.full((1, 11), 1 / 11)
    out = project_distribution(
        probs, jnp.array([2.0]), jnp.array([0.0]), 0.99, -5.0, 5.0, method=method
    )
    expected = np.zeros(11)
    expected[7] = 1.0  # reward 2.0 sits exactly on atom 7 of linspace(-5, 5, 11)
    np.testing.assert_allclose(out[0], expected, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_identity_when_reward_zero_and_discount_one(method):
    probs = jnp.asarray(random_probs(np.random.default_rng(1), 3, 51))
    out = project_distribution(
        probs, jnp.zeros(3), jnp.ones(3), 1.0, -10.0, 10.0, method=method
    )
    np.testing.assert_allclose(out, probs, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_per_sample_discount_equals_scalar_discount_rowwise(method):
    rng = np.random.default_rng(2)
    probs = jnp.asarray(random_probs(rng, 4, 31))
    rewards = jnp.asarray(rng.normal(size=4), jnp.float32)
    discounts = jnp.array([0.9, 0.99, 0.5, 0.0])
    both = project_distribution(
        probs, rewards, jnp.ones(4), discounts, -3.0, 3.0, method=method
    )
    for row, gamma in enumerate(discounts):
        single = project_distribution(
            probs[row : row + 1],
            rewards[row : row + 1],
            jnp.ones(1),
            float(gamma),
            -3.0,
            3.0,
            method=method,
        )
        np.testing.assert_allclose(both[row], single[0], atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_jit_with_static_support_matches_eager(method):
    rng = np.random.default_rng(3)
    args = (
        jnp.asarray(random_probs(rng, 8, 101)),
        jnp.asarray(rng.normal(size=8) * 50, jnp.float32),
        jnp.asarray(rng.integers(0, 2, 8), jnp.float32),
        0.99,
    )
    jitted = jax.jit(project_distribution, static_argnames=("v_min", "v_max", "method"))
    np.testing.assert_allclose(
        jitted(*args, v_min=-250.0, v_max=250.0, method=method),
        project_distribution(*args, -250.0, 250.0, method=method),
        atol=1e-6,
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 6),
    n=st.integers(2, 64),
    # Supports that hold 0, like every real one (+-10, +-250). A narrow support far from 0 is beyond
    # float32: its atoms differ by few ulps, and no two float32 implementations agree there.
    v_min=st.floats(-300, -0.25, allow_nan=False),
    v_max=st.floats(0.25, 300, allow_nan=False),
    reward_scale=st.sampled_from([0.0, 1.0, 10.0, 1000.0]),
    on_atoms=st.booleans(),
)
def test_random_inputs_conserve_mass_and_match_reference(
    seed, batch, n, v_min, v_max, reward_scale, on_atoms
):
    """Both methods, on the same random inputs: each matches the oracles, and they match each other."""
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, batch, n)
    if on_atoms:  # rewards that land exactly on atoms with discount 1: the mass-losing case of naive code
        rewards = (
            rng.integers(-(n - 1), n, batch) * ((v_max - v_min) / (n - 1))
        ).astype(np.float32)
        discount = 1.0
    else:
        rewards = (rng.normal(size=batch) * reward_scale).astype(np.float32)
        discount = rng.uniform(0, 1, batch).astype(np.float32)
    bootstrap = rng.integers(0, 2, batch).astype(np.float32)
    reference = reference_projection(probs, rewards, bootstrap, discount, v_min, v_max)
    loop = loop_projection(probs, rewards, bootstrap, discount, v_min, v_max)
    outs = {}
    for method in METHODS:
        out = np.asarray(
            project_distribution(
                jnp.asarray(probs),
                jnp.asarray(rewards),
                jnp.asarray(bootstrap),
                jnp.asarray(discount),
                v_min,
                v_max,
                method=method,
            )
        )
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(out, reference, atol=5e-5)
        np.testing.assert_allclose(out, loop, atol=5e-5)
        outs[method] = out
    np.testing.assert_allclose(outs["scatter"], outs["dense"], atol=1e-6)


@pytest.mark.parametrize(
    "v_min, v_max, n, message",
    [
        (1.0, 1.0, 11, "v_min must be smaller than v_max"),
        (5.0, -5.0, 11, "v_min must be smaller than v_max"),
        (-1.0, 1.0, 1, "num_atoms must be at least 2"),
    ],
)
def test_bad_support_raises_clear_error(v_min, v_max, n, message):
    probs = jnp.full((2, n), 1.0 / n)
    for method in METHODS:
        with pytest.raises(ValueError, match=message):
            project_distribution(
                probs, jnp.zeros(2), jnp.ones(2), 0.99, v_min, v_max, method=method
            )
    with pytest.raises(ValueError, match=message):
        make_support(v_min, v_max, n)


def test_cross_entropy_is_minimised_by_the_target():
    target = jnp.array([[0.1, 0.2, 0.7]])
    at_target = categorical_cross_entropy(target, jnp.log(target))
    elsewhere = categorical_cross_entropy(target, jnp.zeros((1, 3)))
    entropy = -jnp.sum(target * jnp.log(target))
    np.testing.assert_allclose(at_target, entropy, atol=1e-6)
    assert float(elsewhere[0]) > float(at_target[0])
    # The target is a constant: no gradient flows into it.
    grad = jax.grad(lambda t: categorical_cross_entropy(t, jnp.zeros((1, 3))).sum())(
        target
    )
    np.testing.assert_array_equal(grad, 0.0)


def test_methods_agree_on_large_random_batches():
    """The two formulations on FastTD3-sized rows (101 atoms on +-250, rewards that often clip)."""
    rng = np.random.default_rng(4)
    for batch, n in [(256, 101), (64, 51), (64, 251)]:
        probs = jnp.asarray(random_probs(rng, batch, n))
        rewards = jnp.asarray(rng.normal(size=batch) * 150, jnp.float32)
        bootstrap = jnp.asarray(rng.uniform(size=batch) > 0.1, jnp.float32)
        scatter = project_distribution(
            probs, rewards, bootstrap, 0.99, -250.0, 250.0, method="scatter"
        )
        dense = project_distribution(
            probs, rewards, bootstrap, 0.99, -250.0, 250.0, method="dense"
        )
        np.testing.assert_allclose(scatter, dense, atol=1e-6)
        np.testing.assert_allclose(dense.sum(axis=1), 1.0, atol=1e-5)


def test_default_is_auto_and_auto_picks_per_backend():
    rng = np.random.default_rng(5)
    args = (
        jnp.asarray(random_probs(rng, 4, 21)),
        jnp.asarray(rng.normal(size=4), jnp.float32),
        jnp.ones(4),
        0.9,
    )
    chosen = projection_method("auto")
    assert chosen == ("scatter" if jax.default_backend() == "cpu" else "dense")
    np.testing.assert_array_equal(
        project_distribution(*args, -2.0, 2.0),
        project_distribution(*args, -2.0, 2.0, method=chosen),
    )
    assert set(PROJECTION_METHODS) == {"auto", "scatter", "dense"}
    with pytest.raises(ValueError, match="method must be one of"):
        project_distribution(*args, -2.0, 2.0, method="sparse")


def test_shifted_atoms_are_the_clipped_targets():
    out = shifted_atoms(jnp.array([0.5, 3.0]), jnp.array([1.0, 0.0]), 0.9, -2.0, 2.0, 5)
    np.testing.assert_allclose(out, [[-1.3, -0.4, 0.5, 1.4, 2.0], [2.0] * 5], atol=1e-6)
