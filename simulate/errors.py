"""Errors raised by simulate/."""

from __future__ import annotations


class DivergenceError(RuntimeError):
    r"""A run left the region where its trajectory means anything.

    Raised by :func:`~.run.run` when, for some seed, :math:`w` became non-finite or
    :math:`|w|^2` exceeded ``divergence_bound``. The attributes say where, so that a caller can
    retry with a smaller step size:

    Attributes:
        optimizer: the update rule (``"gd"`` or ``"sgd"``).
        eta: the step size :math:`\eta`.
        seed: the first seed (smallest step) that diverged.
        step: the exact step :math:`k` after which :math:`w_k` was out of bounds (:math:`t = \eta k`).
    """

    def __init__(self, message: str, *, optimizer: str, eta: float, seed: int, step: int) -> None:
        super().__init__(message)
        self.optimizer = optimizer
        self.eta = eta
        self.seed = seed
        self.step = step
