r"""The array aliases of phasedyn's type hints, in one place (jaxtyping + jax only: no sympy, no diffrax).

Shapes use the names of docs/theory.md: ``d`` the dimension, ``m`` the width of the two-layer network
(§3(C)), ``B`` a mini-batch, ``k`` the number of spikes (§3(C)), ``n_seeds`` the seed axis of a run (§4);
``n_states``, ``n_params``, ``n_observables`` the flat state, parameter and observable vectors of a compiled
system (§2).

The hints document shapes; nothing checks them at run time (no ``jaxtyped`` decorator), so they cost nothing
inside ``jax.jit``. :mod:`phasedyn.simulate` imports this module, so it must stay free of sympy and diffrax
(tests/test_layout.py).
"""

from __future__ import annotations

from typing import Any

from jaxtyping import Array, Float, Int, Key

Scalar = Float[Array, ""]
"""A float scalar: :math:`\\eta`, :math:`\\sigma`, a loss, one statistic of one seed."""

IntScalar = Int[Array, ""]
"""An integer scalar: a step or iteration count."""

Vector = Float[Array, " d"]
r"""One neuron's weights :math:`w`, the target :math:`w^*`, the spectrum :math:`\lambda`, a sample :math:`x` (§1)."""

Matrix = Float[Array, "m d"]
r"""The two-layer network's first layer :math:`W` (and its gradient, its polar factor) (§3(C))."""

Samples = Float[Array, "B d"]
"""A mini-batch of inputs :math:`x_1..x_B`, one per row."""

Labels = Float[Array, " B"]
"""The labels :math:`y_1..y_B` of a mini-batch."""

Basis = Float[Array, "k d"]
"""``k`` orthonormal directions, one per row (the spike basis :math:`V`)."""

StateVector = Float[Array, " n_states"]
"""A compiled system's flat state :math:`y` (blocks: ``[m_1..m_B, q_1..q_B]``)."""

ParamVector = Float[Array, " n_params"]
"""A compiled system's flat parameter vector :math:`p`."""

ObservableVector = Float[Array, " n_observables"]
"""A compiled system's observables at one time (``loss``, ``mse``, ...), in ``observable_names`` order."""

PRNGKey = Key[Array, ""]
"""One typed JAX PRNG key (``jax.random.key``)."""

SeedKeys = Key[Array, " n_seeds"]
"""One typed PRNG key per seed."""

PyTree = Any
"""Any JAX pytree (a stepper's bookkeeping beside the weights)."""

__all__ = ["Basis", "IntScalar", "Labels", "Matrix", "ObservableVector", "PRNGKey", "ParamVector", "PyTree",
           "Samples", "Scalar", "SeedKeys", "StateVector", "Vector"]
