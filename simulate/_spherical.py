r"""Spherical online SGD: one SGD step, then back onto the sphere (Mousavi-Hosseini et al., NeurIPS 2023; [P3]).

:math:`\tilde w = w - \eta\nabla_w\ell(x\cdot w, x\cdot w^*, \xi)` on a fresh sample, then
:math:`w \leftarrow \tilde w/|\tilde w|_B` with :math:`|v|_B^2 = v^\top Bv`: :math:`B = I` (``"spherical-sgd"``,
the Euclidean sphere) or :math:`B = \Sigma` (``"sigma-spherical-sgd"``, the :math:`\Sigma`-norm, with the true
:math:`\Sigma`). The gradient is :func:`~.optimizers.sgd_step`'s (``jax.grad`` of the model's loss).
"""

from __future__ import annotations

import jax.numpy as jnp

from phasedyn.typing import PRNGKey, Scalar, Vector
from phasedyn.theory.model import Model

from .optimizers import sgd_step

#: the norms: rule name → whether the norm's weight is Σ (else I)
SPHERES = {"spherical-sgd": False, "sigma-spherical-sgd": True}


def normalise(w: Vector, lam: Vector, sigma_norm: bool) -> Vector:
    r""":math:`w/|w|_B` (:math:`B = \Sigma = \mathrm{diag}(\lambda)` when ``sigma_norm``, else :math:`I`); last axis."""
    weight = lam if sigma_norm else jnp.ones_like(lam)
    return w / jnp.sqrt(jnp.sum(weight * w * w, axis=-1, keepdims=True))


def spherical_sgd_step(w: Vector, key: PRNGKey, w_star: Vector, lam: Vector, eta: float | Scalar,
                       sigma: float | Scalar = 0.0, model: Model | None = None, sigma_norm: bool = False) -> Vector:
    r"""One spherical online-SGD step: :func:`~.optimizers.sgd_step`, then :func:`normalise`."""
    return normalise(sgd_step(w, key, w_star, lam, eta, sigma, model), lam, sigma_norm)
