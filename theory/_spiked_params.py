r"""(C) Spiked covariance: parameters, geometry checks, the identity start and observables at given states
(docs/theory.md §3C)."""

from __future__ import annotations

import jax
import numpy as np

from .system import System
from .validate import check_greater, check_int, check_positive

def check_theta(value: float) -> float:
    """Require a finite spike strength ``theta > -1`` (the spike eigenvalue 1 + θ must be positive)."""
    return check_greater("theta", value, -1.0)


def check_geometry(w_star: np.ndarray, v: np.ndarray, atol: float = 1e-10) -> None:
    r"""The reduced systems need :math:`|w^*| = |v| = 1` and :math:`v \perp w^*`; raise ``ValueError`` otherwise."""
    w_star, v = np.asarray(w_star, float), np.asarray(v, float)
    if w_star.shape != v.shape or w_star.ndim != 1:
        raise ValueError(f"w_star and v must be vectors of one length d, got shapes {w_star.shape}, {v.shape}")
    for name, x in (("w_star", w_star), ("v", v)):
        if abs(np.linalg.norm(x) - 1) > atol:
            raise ValueError(f"{name} must be a unit vector for the reduced spiked system, got |{name}| = "
                             f"{np.linalg.norm(x):.6g}")
    overlap = float(w_star @ v)
    if abs(overlap) > atol:
        raise ValueError(f"the spike v must be orthogonal to w_star for the reduced (a, b, c) system "
                         f"(allowed |v.w_star| <= {atol:g}), got v.w_star = {overlap:.6g}")


def spiked_params(
    system: System, theta: float, m: float | None = None, d: float | None = None, eta: float | None = None
) -> dict[str, float]:
    """Validated parameter dict for a spiked system (only the names it needs; ``eta`` required for maps)."""
    out = {"theta": check_theta(theta)}
    names = system.param_names
    if "m" in names:
        if m is None:
            raise ValueError("m is required for the two-layer system (allowed range: integer >= 1)")
        out["m"] = float(check_int("m", m, 1))
    if "d" in names:
        if d is None:
            raise ValueError("d is required for the two-layer system (allowed range: integer >= 3)")
        out["d"] = float(check_int("d", d, 3))
    if "eta" in names:
        if eta is None:
            raise ValueError(f"eta is required for {system.name} (allowed range (0, inf))")
        out["eta"] = check_positive("eta", eta)
    return out


def identity_start(init_scale: float) -> dict[str, float]:
    r"""Reduced state of :math:`W(0) = c_0 I` (:math:`m = d`): :math:`a = b = c = c_0`."""
    c0 = check_positive("init_scale", init_scale)
    return {"a": c0, "b": c0, "c": c0}


def observe(system: System, y, params) -> dict[str, np.ndarray]:
    r"""Every observable of ``system`` at the states ``y`` ``(..., n_states)`` (or ``{name: array}``) and ``params``
    (broadcast against ``y``'s leading axes): ``{name: (...)}``.

    The two-layer system's ``u``, ``s``, ``mse`` are exact functions of the full-matrix simulation's recorded
    ``a, b, c`` (:func:`matrix_statistics`), so this also gives the simulation's.
    """
    y, p = system.pack_state(y), system.pack_params(params)
    batch = np.broadcast_shapes(y.shape[:-1], p.shape[:-1])
    yf = np.broadcast_to(y, batch + y.shape[-1:]).reshape(-1, y.shape[-1])
    pf = np.broadcast_to(p, batch + p.shape[-1:]).reshape(-1, p.shape[-1])
    obs = np.asarray(jax.vmap(system.observable_fn)(yf, pf))
    return {name: obs[:, i].reshape(batch) for i, name in enumerate(system.observable_names)}
