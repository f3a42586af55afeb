r"""Which effective dimension the escape follows: the derived mean field's samples to escape on a family of spectra,
against the isotropic curve (issue 12; docs/theory.md §5(B)).

For a spectrum :math:`\Sigma` the mean field (exact per-mode system) of ``optimizer`` with :math:`\mathrm{He}_k` teacher
and student (correlation loss on a sphere, square loss for vanilla SGD) gives the median samples to escape
:math:`n(\Sigma) = T_1/\eta` over seeds (start uniform on the sphere, sign with :math:`u_0 > 0`; the step a fixed
fraction of the largest step at which the mean field escapes from that start, read off the derived right-hand side;
:math:`|u| \ge 0.5`). The isotropic curve :math:`n_{iso}(d')` inverted at :math:`n(\Sigma)` defines the dimension the
dynamics behave like, :math:`d_{equiv}`. Each candidate of :func:`phasedyn.theory.effective_dimensions` is then scored
by the spread (standard deviation over the family) of :math:`\log(d_{eff}/d_{equiv})`: the candidate with the smallest
spread is the one the escape follows.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from phasedyn.simulate import SPHERES, normalise
from phasedyn.theory import BlockSystem, Model, effective_dimensions, single_index_problem
from phasedyn.theory import powerlaw as PL
from phasedyn.theory.blocks import block_params, block_state, make_blocks

from .phases import first_crossing

ESCAPE, STEP_FRACTION = 0.5, 0.25
FAMILY = ([("powerlaw", {"a": a}) for a in (0.25, 0.5, 0.75)]
          + [("spiked", {"theta": th, "spike": sp}) for th in (3.0, 15.0) for sp in ("signal", "orthogonal")])


def _start(pb, optimizer: str, seeds: int) -> np.ndarray:
    w0 = pb.w0_batch(list(range(seeds)))
    if optimizer in SPHERES:
        w0 = np.asarray(normalise(w0, pb.lam, SPHERES[optimizer]))
    return w0 * np.sign(w0 @ (pb.lam * pb.w_star))[:, None]


def _blocks(pb) -> int | None:
    """One block where the spectrum is flat (exact, and one compiled system for every isotropic d), else per mode."""
    return 1 if np.ptp(pb.lam) == 0 else None


def largest_escaping_step(pb, model: Model, optimizer: str, w0: np.ndarray) -> float:
    r""":math:`\eta_{max}` of the per-mode mean field at the start ``w0[0]``: :math:`\dot u = A - \eta B > 0`, and for vanilla
    SGD :math:`\dot s \le 0` where the drift shrinks :math:`s` (both linear in :math:`\eta`)."""
    bl = make_blocks(pb.lam, _blocks(pb))
    system = BlockSystem(bl.B, optimizer, model)
    y = jnp.asarray(system.pack_state(block_state(pb, bl, w0[:1])))[0]
    lam = jnp.asarray(pb.lam)
    rates = [np.asarray(system.vector_field(0.0, y, jnp.asarray(system.pack_params(block_params(pb, bl, e)))))
             for e in (1e-300, 1.0)]
    (du0, ds0), (du1, ds1) = ([float(jnp.sum(lam * r[:bl.B])), float(jnp.sum(lam * r[bl.B:]))] for r in rates)
    bounds = [du0 / (du0 - du1)] if du0 > 0 and du0 > du1 else [math.inf]
    if optimizer == "sgd" and ds0 < 0 and ds1 > ds0:
        bounds.append(-ds0 / (ds1 - ds0))
    return min(bounds)


def escape_samples(pb, k: int, optimizer: str, seeds: int = 4) -> float:
    """Median mean-field samples to escape (module docstring) on ``pb``; ``inf`` when most seeds do not escape."""
    model = Model.single_index(f"he{k}", f"he{k}", "correlation" if optimizer in SPHERES else "square")
    w0 = _start(pb, optimizer, seeds)
    eta = STEP_FRACTION * min(largest_escaping_step(pb, model, optimizer, w0), 0.5 / pb.lam.sum())
    ts = np.r_[0.0, np.geomspace(1e-3, 1e3, 300)]
    sol = PL.blocks(pb, _blocks(pb), optimizer, eta=eta, ts=ts, w0=w0, model=model, max_steps=100_000)
    t1 = [first_crossing(ts, np.abs(u), ESCAPE) for u in np.asarray(sol["u"])]
    return float(np.median([np.inf if t is None else t for t in t1])) / eta


def collapse(k: int = 2, optimizer: str = "spherical-sgd", d: int = 512, iso_d=None, family=FAMILY,
             seeds: int = 4) -> dict:
    """The collapse table of the module docstring: per spectrum ``n``, ``d_equiv`` and the candidates; per candidate
    the mean and spread of ``log(d_eff/d_equiv)``."""
    iso_d = np.unique(np.geomspace(16, 8 * d, 14).astype(int)) if iso_d is None else np.asarray(iso_d)
    n_iso = np.array([escape_samples(single_index_problem(int(x), seed=0), k, optimizer, seeds) for x in iso_d])
    ok = np.isfinite(n_iso)
    rows = []
    for spectrum, kw in family:
        pb = single_index_problem(d, spectrum, seed=0, **kw)
        n = escape_samples(pb, k, optimizer, seeds)
        d_equiv = float(np.exp(np.interp(np.log(n), np.log(n_iso[ok]), np.log(iso_d[ok])))) if np.isfinite(n) else None
        rows.append({"spectrum": spectrum, **kw, "samples": n, "d_equiv": d_equiv,
                     "candidates": effective_dimensions(pb.lam, pb.w_star)})
    scores = {}
    for cand in rows[0]["candidates"]:
        r = np.array([math.log(row["candidates"][cand] / row["d_equiv"]) for row in rows if row["d_equiv"]])
        scores[cand] = {"mean_log_ratio": float(r.mean()), "spread": float(r.std())}
    best = min(scores, key=lambda c: scores[c]["spread"])
    return {"k": k, "optimizer": optimizer, "d": d, "isotropic": {"d": iso_d.tolist(), "samples": n_iso.tolist()},
            "spectra": rows, "scores": scores, "followed": best}
