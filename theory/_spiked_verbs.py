r"""(C) Spiked covariance: the verbs every system shares (docs/theory.md §6) for the one-neuron (``network="neuron"``)
and the two-layer (``network="two_layer"``) reduced systems in :math:`(a, b, c)` (docs/theory.md §3C)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._solve import Solution
from ._spiked_analysis import growth_rates, peak_ratio_exponent, start_threshold, threshold
from ._spiked_neuron import neuron_system
from ._spiked_neuron import theta as _theta
from ._spiked_params import check_geometry, check_theta, identity_start, spiked_params
from ._spiked_two_layer import TWO_LAYER_OPTIMIZERS, two_layer_system
from ._verbs import check_kind, evolve, weights
from .model import Model
from .problem import Problem
from .system import System
from .validate import check_choice

NETWORKS = ("neuron", "two_layer")


def _theta_of(problem: Problem) -> float:
    """The spike strength of ``problem``: ``meta["theta"]``, else :math:`\\lambda_1 - 1` (spike on :math:`e_1`)."""
    check_kind(problem, ("spiked",), "spiked")
    return check_theta(float(problem.meta.get("theta", problem.lam[0] - 1.0)))


def _spike(problem: Problem) -> np.ndarray:
    r"""The spike direction :math:`v = e_1` of :func:`~phasedyn.theory.spiked_problem` (checked: unit,
    :math:`\perp w^*`, and the rest of the spectrum 1)."""
    v = np.zeros(problem.d)
    v[0] = 1.0
    check_geometry(problem.w_star, v)
    if not np.allclose(problem.lam[1:], 1.0, rtol=0, atol=1e-12):
        raise ValueError("phasedyn.theory.spiked needs Sigma = I + theta e_1 e_1^T (every eigenvalue but the first 1)")
    return v


def system(problem: Problem | None = None, optimizer: str = "gd", model=None, *, network: str = "neuron") -> System:
    r"""The reduced :math:`(a, b, c)` system: one neuron (:func:`neuron_system`, ``"gf"``/``"gd"``, any ``model``)
    or two layers (:func:`two_layer_system`, ``"gf"``/``"gd"``/``"specgd"``/``"specgf"``/``"muon"``; derived for
    the phase-retrieval loss only, so another ``model`` is a ``ValueError``)."""
    check_choice("network", network, NETWORKS)
    if problem is not None:
        _spike(problem)
    if network == "neuron":
        return neuron_system(optimizer, model)
    if not Model.coerce(model).is_phase_retrieval:
        raise ValueError("model: the two-layer spiked system is derived for the phase-retrieval loss only (allowed: "
                         "(g**2 - h**2 - xi)**2); the one-neuron system takes any loss (network='neuron')")
    check_choice("optimizer", optimizer, TWO_LAYER_OPTIMIZERS)
    return two_layer_system(optimizer)


def params(problem: Problem, optimizer: str = "gd", eta: float | None = None, *, network: str = "neuron",
           m: int | None = None) -> dict[str, float]:
    r"""``theta`` of ``problem`` (+ ``m`` (default :math:`d`), ``d`` for two layers, ``eta`` for the maps)."""
    sys_ = system(problem, optimizer, network=network)
    return spiked_params(sys_, _theta_of(problem), problem.d if m is None else m, problem.d, eta)


def state(problem: Problem, w0=None, *, network: str = "neuron", init_scale: float | None = None) -> dict:
    r"""Initial :math:`(a, b, c)`. One neuron: :math:`a = w\cdot w^*`, :math:`b = w\cdot v`,
    :math:`c = |P_\perp w|` of ``w0`` (``(..., d)``; default ``problem.w0``). Two layers: the identity start
    :math:`W(0) = c_0 I` (``init_scale`` :math:`= c_0`, required), :math:`a = b = c = c_0`."""
    check_choice("network", network, NETWORKS)
    v = _spike(problem)
    if network == "two_layer":
        if init_scale is None:
            raise ValueError("init_scale is required for the two-layer start W(0) = c0 I (allowed range (0, inf))")
        return identity_start(init_scale)
    w = weights(problem, w0)
    a, b = w @ problem.w_star, w @ v
    c = np.sqrt(np.maximum(np.sum(w * w, axis=-1) - a**2 - b**2, 0.0))
    return {"a": float(a), "b": float(b), "c": float(c)} if w.ndim == 1 else {"a": a, "b": b, "c": c}


def solve(problem: Problem, optimizer: str = "gd", *, network: str = "neuron", eta: float | None = None,
          t1: float | None = None, ts=None, steps: int | None = None, record_steps=None, w0=None,
          m: int | None = None, init_scale: float | None = None, model=None, **opts) -> Solution:
    r"""The reduced dynamics of ``problem`` from :func:`state`: flows (``t1``/``ts``) or exact maps
    (``steps``/``record_steps``; ``watches=`` for every-step measurements such as
    :class:`~phasedyn.theory._watch.PeakRatio`, which :func:`track` reads off), through
    :func:`~phasedyn.theory._verbs.evolve`."""
    sys_ = system(problem, optimizer, model, network=network)
    return evolve(sys_, state(problem, w0, network=network, init_scale=init_scale),
                  params(problem, optimizer, eta, network=network, m=m), t1=t1, ts=ts, steps=steps,
                  record_steps=record_steps, **opts)


def predictions(problem: Problem, model=None, *, network: str = "neuron", m: int | None = None,
                init_scale: float | None = None) -> dict[str, float | None]:
    r"""The spiked predictions at ``problem``'s :math:`\theta` (docs/theory.md §3C), read off the derived flow:

    ``rates`` (early growth rates of :math:`a, b, c` at the origin), ``threshold`` (the :math:`\theta` above which
    the spike outgrows the signal, 2 for phase retrieval), ``spike_wins`` (:math:`\theta >` threshold),
    ``peak_ratio_exponent`` (:math:`\gamma` of :math:`\max|b|/|a| \propto c_0^{-\gamma}`, for
    :math:`\theta` above the threshold, else ``None``) and, for two layers with ``init_scale``,
    ``start_threshold`` (the threshold from :math:`W(0) = c_0 I` at width ``m``, default :math:`d`).
    """
    flow = system(problem, "gf", model, network=network)
    th = _theta_of(problem)
    width = _width(flow, problem, m)
    rates = {k: float(v.xreplace({_theta: th, **width})) for k, v in growth_rates(flow).items()}
    thr = float(threshold(flow))
    out = {"rates": rates, "threshold": thr, "spike_wins": th > thr,
           "peak_ratio_exponent": float(sp.sympify(peak_ratio_exponent(flow)).xreplace({_theta: th, **width}))
           if th > thr else None}
    if network == "two_layer":
        out["start_threshold"] = (None if init_scale is None
                                  else start_threshold(init_scale, problem.d if m is None else m, problem.d))
    return out


def _width(flow: System, problem: Problem, m: int | None) -> dict:
    names = {str(p): p for p in flow.params}
    return {names[k]: v for k, v in (("m", problem.d if m is None else m), ("d", problem.d)) if k in names}
