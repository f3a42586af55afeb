"""The truncated hierarchy observes u = u_1 and s = s_1 under the names every system and the simulation use
(docs/theory.md §1, §3(B)), so sol["u"], sol["s"] work on every system."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import phasedyn.theory as th
from phasedyn.compare import STATS
from phasedyn.simulate import statistics
from phasedyn.theory.hierarchy import hierarchy_params, hierarchy_state, hierarchy_system

P = th.powerlaw_problem(40, 1.5, sigma=0.2)
TS = np.linspace(0.0, 0.5, 6)


@pytest.mark.parametrize("K", [1, 3])
def test_hierarchy_observes_u_and_s(K):
    system = hierarchy_system(K)
    assert system.observable_names == ("u", "s", "loss", "mse")
    sol = th.solve(system, hierarchy_state(P, P.w0_batch([0, 1]), K), hierarchy_params(P, K), ts=TS)
    np.testing.assert_array_equal(sol["u"], sol["u_1"])
    np.testing.assert_array_equal(sol["s"], sol["s_1"])
    assert all(sol[k].shape == (2, TS.size) for k in STATS)


def test_hierarchy_gd_map_observes_u_and_s():
    K = 2
    system = hierarchy_system(K, "gd")
    sol = th.iterate(system, hierarchy_state(P, P.w0, K), hierarchy_params(P, K, eta=1e-2, optimizer="gd"), 20)
    np.testing.assert_array_equal(sol["u"], sol["u_1"])
    np.testing.assert_array_equal(sol["s"], sol["s_1"])


def test_hierarchy_observables_at_the_start_equal_the_simulations():
    """At t = 0 the hierarchy's u, s, loss, mse of w(0) equal simulate's statistics of w(0) (theory's derived loss
    against simulate's quadrature; the hierarchy's order-0 MSE against simulate's min(|w - w*|, |w + w*|))."""
    K = 3
    sol = th.solve(hierarchy_system(K), hierarchy_state(P, P.w0, K), hierarchy_params(P, K), ts=TS)
    sim = statistics(jnp.asarray(P.w0), jnp.asarray(P.w_star), jnp.asarray(P.lam), P.sigma)
    for k in STATS:
        np.testing.assert_allclose(sol[k][0], float(sim[k]), rtol=1e-12, atol=1e-15, err_msg=k)
    for k in ("u_0", "s_0", "u_2", "s_2"):  # the simulation's other moments are the hierarchy's states
        np.testing.assert_allclose(sol[k][0], float(sim[k]), rtol=1e-12, atol=1e-15, err_msg=k)


def test_every_system_answers_the_common_statistics():
    """isotropic, blocks and hierarchy solutions all give {k: sol[k] for k in STATS}, no renaming."""
    iso = th.solve(th.isotropic_system("gf"), {"u": 0.05, "s": 1.0}, th.isotropic_params("gf", d=40), ts=TS)
    blk = th.powerlaw.blocks(P, 4, ts=TS)
    hier = th.powerlaw.hierarchy(P, 2, ts=TS)
    for sol in (iso, blk, hier):
        curves = {k: sol[k] for k in STATS}
        assert all(np.shape(v)[-1] == TS.size and np.all(np.isfinite(v)) for v in curves.values()), sol.system.name
