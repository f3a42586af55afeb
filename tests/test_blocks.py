"""The block system's observables carry the theory's names, the same the simulation records (docs/theory.md §1,
§3(B)): one name per statistic from theory/ through simulate/ to compare/, no renaming anywhere."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from phasedyn.simulate import statistics
from phasedyn.simulate.losses import STATISTICS
from phasedyn.theory import BlockSystem, powerlaw_problem
from phasedyn.theory.blocks import block_params, block_state, make_blocks


def test_observable_names_are_the_simulations_statistics():
    assert BlockSystem(3).observable_names == STATISTICS
    assert STATISTICS == ("u", "s", "u_0", "s_0", "u_2", "s_2", "loss", "mse")


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_per_mode_observables_equal_the_simulations_statistics(sigma):
    """B = d (exact per mode): every observable of w(0) equals simulate's statistic of that name, to round-off.

    Independent routes: the block observables sum per-mode states and evaluate theory's derived loss; simulate
    sums per direction and integrates the loss by Gauss-Hermite quadrature."""
    p = powerlaw_problem(12, 1.5, sigma=sigma)
    bl = make_blocks(p.lam)
    system = BlockSystem(bl.B)
    y = system.pack_state(block_state(p, bl, p.w0))
    prm = system.pack_params(block_params(p, bl))
    obs = np.asarray(system.observable_fn(jnp.asarray(y), jnp.asarray(prm)))
    sim = statistics(jnp.asarray(p.w0), jnp.asarray(p.w_star), jnp.asarray(p.lam), sigma)
    for i, name in enumerate(system.observable_names):
        np.testing.assert_allclose(obs[i], float(sim[name]), rtol=1e-12, atol=1e-15, err_msg=name)
