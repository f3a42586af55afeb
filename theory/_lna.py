r"""The linear-noise approximation of isotropic online SGD: the covariance of :math:`(u, s)` across seeds around the
mean-field path (docs/theory.md §4(A); issue 14, item 2).

With the drift :math:`F(m)` of the online-SGD mean field (:func:`~phasedyn.theory.isotropic_system`) and the noise
of one step :math:`\mathrm{Cov}(\Delta m) = \eta^2 C(m)` (:func:`~phasedyn.theory.increment_covariance`), the
statistics follow :math:`dm = F\,dt + \sqrt\eta\,C^{1/2}dW` in :math:`t = \eta k`, and to first order in the noise
their covariance :math:`P` obeys

.. math:: \dot m = F(m),\qquad \dot P = J(m)P + PJ(m)^\top + \eta\,C(m),\qquad J = \partial F/\partial m,

one system of five states :math:`(u, s, P_{uu}, P_{us}, P_{ss})` derived symbolically and solved in one diffrax
call. At fixed :math:`\eta d` the band scales like :math:`\sqrt\eta \propto d^{-1/2}`. It describes seeds that share
their start (a warm start away from :math:`u = 0`); from a random start the spread of the escape time dominates,
which :func:`~phasedyn.theory.escape_law` predicts.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from . import symbols as S
from ._escape import _increment_covariance
from .isotropic import isotropic_system
from .model import Model
from .system import System
from .validate import check_int, check_nonnegative, check_positive

P_UU, P_US, P_SS = sp.symbols("P_uu P_us P_ss")


def lna_system(model: Model | str | None = None) -> System:
    """The five-state system of the module docstring for ``model`` (cached); observables ``sd_u``, ``sd_s``."""
    return _lna_system(Model.coerce(model))


@lru_cache(maxsize=16)
def _lna_system(model: Model) -> System:
    mean = isotropic_system("sgd", model)
    F = sp.Matrix(mean.rhs)
    J = F.jacobian(sp.Matrix([S.u, S.s]))
    P = sp.Matrix([[P_UU, P_US], [P_US, P_SS]])
    dP = J * P + P * J.T + S.eta * _increment_covariance(model)
    return System(
        name=f"isotropic-sgd-lna{model.tag}",
        states=(S.u, S.s, P_UU, P_US, P_SS),
        params=mean.params,
        rhs=(*mean.rhs, sp.expand(dP[0, 0]), sp.expand(dP[0, 1]), sp.expand(dP[1, 1])),
        observables=(("sd_u", sp.sqrt(sp.Max(P_UU, 0))), ("sd_s", sp.sqrt(sp.Max(P_SS, 0)))),
        description="isotropic online SGD: mean field and linear-noise covariance",
    )


def lna_band(d: int, eta: float, u0: float, s0: float, t: np.ndarray, *, s_star: float = 1.0, sigma: float = 0.0,
             model: Model | str | None = None):
    r"""The mean-field path from :math:`(u_0, s_0)` with its linear-noise covariance (:math:`P(0) = 0`: every seed
    starts there) on the grid ``t``: a :class:`~phasedyn.theory.Solution` with ``u``, ``s``, ``P_uu``, ``P_us``,
    ``P_ss``, ``sd_u``, ``sd_s``."""
    from ._solve import solve

    check_int("d", d, 2)
    eta = check_positive("eta", eta)
    check_nonnegative("sigma", sigma)
    return solve(lna_system(model), {"u": u0, "s": s0, "P_uu": 0.0, "P_us": 0.0, "P_ss": 0.0},
                 {"s_star": s_star, "sigma": sigma, "d": float(d), "eta": eta}, ts=np.asarray(t, float),
                 rtol=1e-10, atol=1e-14)
