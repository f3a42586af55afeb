"""Correctness of the fast paths of issue 16 (no timing here; speed lives in benchmarks/).

* simulate/_sgd_rng.py: the unrolled Threefry normal gives ``jax.random.normal``'s bits exactly (float32 and
  float64, several keys and shapes, under vmap as in the SGD kernel), and other generators fall back to it;
* online SGD through ``run()`` equals a plain loop on ``jax.random.normal`` samples (to rounding: the kernel's
  reductions are ordered differently; tests/test_simulate_bits.py pins run()'s own bits).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import phasedyn.theory as th
from phasedyn.simulate import _sgd_rng, run
from phasedyn.simulate.losses import sample_loss


def _bits(a) -> np.ndarray:
    return np.asarray(a).view(np.uint8)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_unrolled_threefry_normal_has_jax_bits(dtype):
    for seed in (0, 1, 2**31 - 1, 12345):
        for k in (0, 7, 10**6):
            key = jax.random.fold_in(jax.random.key(seed), k)
            for shape in ((1,), (7,), (1000,), (3, 5)):
                want = jax.jit(lambda key, shape=shape: jax.random.normal(key, shape, dtype))(key)
                got = jax.jit(lambda key, shape=shape: _sgd_rng.normal(key, shape, dtype))(key)
                np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"{seed} {k} {shape}")
    keys = jax.vmap(jax.random.key)(jnp.arange(5))
    want = jax.vmap(lambda k: jax.random.normal(k, (33,), dtype))(keys)
    got = jax.vmap(lambda k: _sgd_rng.normal(k, (33,), dtype))(keys)
    np.testing.assert_array_equal(_bits(got), _bits(want))


def test_other_generators_and_raw_keys_fall_back_to_jax():
    for impl in ("philox4x32", "rbg"):
        key = jax.random.key(3, impl=impl)
        np.testing.assert_array_equal(_bits(_sgd_rng.normal(key, (17,), jnp.float64)),
                                      _bits(jax.random.normal(key, (17,), jnp.float64)))
    raw = jax.random.PRNGKey(4)
    np.testing.assert_array_equal(_bits(_sgd_rng.normal(raw, (17,), jnp.float32)),
                                  _bits(jax.random.normal(raw, (17,), jnp.float32)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_run_sgd_equals_a_loop_on_jax_random_normal(dtype):
    p = th.powerlaw_problem(40, 2.0, sigma=0.1)
    eta, steps, seed = 0.01, 25, 3
    tr = run(p, "sgd", eta, steps, seeds=[seed], n_record=2, dtype=dtype, progress=False)
    dt = jnp.dtype(dtype)
    w_star, lam = jnp.asarray(p.w_star, dt), jnp.asarray(p.lam, dt)
    grad = jax.grad(sample_loss)

    @jax.jit
    def step(w, key):
        kx, kxi = jax.random.split(key)
        x = jnp.sqrt(lam) * jax.random.normal(kx, w.shape, dt)
        xi = jnp.asarray(0.1, dt) * jax.random.normal(kxi, (), dt)
        return w - jnp.asarray(eta, dt) * grad(w, x, w_star, xi, None)

    w = jnp.asarray(p.w0_batch([seed])[0], dt)
    key = jax.random.key(seed)
    for k in range(steps):
        w = step(w, jax.random.fold_in(key, k))
    tol = 1e-5 if dtype == "float32" else 1e-13  # rounding only; another sample would differ by O(eta)
    np.testing.assert_allclose(np.asarray(tr.w_final)[0], np.asarray(w), rtol=0, atol=tol * np.abs(w).max())
