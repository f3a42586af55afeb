r"""Pure update rules on :math:`w` in the eigenbasis of :math:`\Sigma`, O(d) per step (docs/theory.md §1).

* :func:`gd_step`: full-batch population gradient descent, :math:`w \leftarrow w - \eta\nabla L(w)`.
* :func:`sgd_step`: online SGD with one fresh sample, :math:`w \leftarrow w - \eta\nabla_w\ell(w; x, y)`.

Both are time-discretisations with :math:`t = \eta k`. The gradients are ``jax.grad`` of the losses
in :mod:`.losses` for the run's :class:`~phasedyn.theory.model.Model` (default phase retrieval), so they
are exact at finite :math:`d` and typed nowhere by hand.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from phasedyn.typing import PRNGKey, Scalar, Vector
from phasedyn.theory.model import Model

from . import _sgd_rng
from .losses import population_loss, sample_loss

_grad_population = jax.grad(population_loss)
_grad_sample = jax.grad(sample_loss)


def gd_step(w: Vector, w_star: Vector, lam: Vector, eta: float | Scalar, sigma: float | Scalar = 0.0,
            model: Model | None = None) -> Vector:
    r"""One step of population GD: :math:`w \leftarrow w - \eta\nabla L(w)`.

    :math:`\nabla L` is ``jax.grad`` of :func:`~.losses.population_loss` for ``model``. Args as in
    :func:`~.losses.population_loss`; ``eta`` is the step size.
    """
    return w - eta * _grad_population(w, w_star, lam, jnp.asarray(sigma, dtype=w.dtype), model)


def sample(
    key: PRNGKey, w_star: Vector, lam: Vector, sigma: float | Scalar
) -> tuple[Vector, Scalar]:
    r"""One fresh sample: :math:`x = \sqrt\lambda\odot z`, :math:`z\sim N(0, I_d)`, and the label noise
    :math:`\xi = \sigma\zeta`, :math:`\zeta\sim N(0,1)` (phase retrieval: :math:`y = (x\cdot w^*)^2 + \xi`);
    dtype of ``w_star``. ``z`` is ``jax.random.normal(kx, ...)`` bit for bit; for a threefry key its hash is
    unrolled (:mod:`._sgd_rng`: JAX's rolled CPU lowering of Threefry bounds online SGD on a CPU)."""
    kx, kxi = jax.random.split(key)
    z = _sgd_rng.normal(kx, w_star.shape, w_star.dtype)
    xi = jax.random.normal(kxi, (), dtype=w_star.dtype)
    return jnp.sqrt(lam) * z, sigma * xi


def sgd_step(
    w: Vector,
    key: PRNGKey,
    w_star: Vector,
    lam: Vector,
    eta: float | Scalar,
    sigma: float | Scalar = 0.0,
    model: Model | None = None,
) -> Vector:
    r"""One step of online SGD on a fresh sample (see :func:`sample`):
    :math:`w \leftarrow w - \eta\nabla_w\ell(x\cdot w, x\cdot w^*, \xi)` for ``model``'s loss.

    In expectation over ``key`` the update is :func:`gd_step`'s. ``key`` is a JAX PRNG key;
    :func:`~.run.run` uses ``jax.random.fold_in(jax.random.key(seed), k)`` at step ``k``.
    """
    x, xi = sample(key, w_star, lam, sigma)
    return w - eta * _grad_sample(w, x, w_star, xi, model)
