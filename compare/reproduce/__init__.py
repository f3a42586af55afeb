r"""``phasedyn reproduce p1``: regenerate the experiments of [P1] (arXiv:2511.18661), docs/theory.md §3(B).

One function per experiment; each simulates (population GD or online SGD, every run seeded: target
:math:`w^*` by ``seed``, initialisation :math:`j` by seed :math:`j`, SGD samples by
``jax.random.key(j)``), solves the theory **per seed from that seed's own** :math:`w(0)`, reads phases
and exponents off both curves with the same detector and fit (docs/theory.md §4), and writes into
``DIR/p1/<name>/``: ``config.json``, ``results.json``, ``results.npz`` and PNG + PDF figures.
:func:`reproduce_p1` runs them all and writes ``DIR/p1/REPORT.md``.

=====  =====================================================  =====================================
name   [P1]'s experiment                                      claim / equation reproduced
=====  =====================================================  =====================================
E1     Fig. 2: a = 2, d = 1000, GD η = 1e-2, 1e7 steps         the three phases in (u, s, MSE)
E2     u(t) for a ∈ {1.5, 2, 3, 4}, d = 1000, GD η = 1e-3      Phase I: u ∝ e^{ρt}, ρ the root > 4λ₁ of
                                                              1 = 8Σ(w*_i)²λ_i²/(ρ − 4λ_i);
                                                              T₁ ≈ log(δ/|u₀|)/ρ = Θ(log d)
E3     Phase III at d = 300 (a = 2)                           MSE(T₂+τ) ≈ MSE(T₂)·S_d(τ),
                                                              S_d ≈ 1 − Γ(1−1/a)x/d in 1 ≪ x ≪ d
E4     online SGD, a ∈ {0.5, 1, 1.5}, noise N(0, 0.05)        the mean-field (B = d, "sgd") system
E5     log(1−u) vs log t, d ∈ {500, 2000, 5000} (a = 2)       T₂ − T₁' = O(ε^{−2a/(a−1)} log 1/ε)
=====  =====================================================  =====================================

Theory: gradient flow is the exact per-mode system by the exponential integrator
(:func:`phasedyn.theory.powerlaw.exact`); online SGD is the exact per-mode mean field
(:func:`phasedyn.theory.powerlaw.blocks` with :math:`B = d`, ``"sgd"``, label noise included). GD at
step η is compared with gradient flow, so an :math:`O(\eta)` gap is expected and reported.
``quick=True`` shrinks horizons, seeds and dimensions (for tests, < 2 min); REPORT.md says which
experiment ran at [P1]'s setting and which at a reduced one, and why.

Modules, one job each: :mod:`.settings` (names, folders, thresholds, the paper's and the ``--quick``
configurations), :mod:`.measure` (problem, per-seed theory, overlay, [P1]'s predictions, fits, a report row),
:mod:`.experiments` (E1–E5), :mod:`.figures`, :mod:`.files` (each folder's JSON and NPZ), :mod:`.report`
(``REPORT.md``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .._folders import check_out, staged
from .experiments import RUNNERS, e1_fig2, e2_escape, e3_phase3, e4_sgd_noise, e5_phase2
from .measure import (aligned, linear_escape_time, make_problem, measure, overlay_p1, p1_predictions,
                      phase3_asymptotic_errors, rho_fit, row, theory_curves)
from .report import write_report
from .settings import (DELTA, EPS, EXPERIMENTS, FOLDERS, FULL, PAPER, QUICK, RHO_WINDOW, TITLES, E1Config, E2Config,
                       E3Config, E4Config, E5Config, configs)

__all__ = [
    "DELTA", "EPS", "EXPERIMENTS", "FOLDERS", "FULL", "PAPER", "QUICK", "RHO_WINDOW", "RUNNERS", "TITLES",
    "E1Config", "E2Config", "E3Config", "E4Config", "E5Config",
    "aligned", "configs", "e1_fig2", "e2_escape", "e3_phase3", "e4_sgd_noise", "e5_phase2", "linear_escape_time",
    "make_problem", "measure", "overlay_p1", "p1_predictions", "phase3_asymptotic_errors", "reproduce_p1", "rho_fit",
    "row", "theory_curves", "write_report",
]


def reproduce_p1(out: Path, quick: bool = False, progress: bool | None = None,
                 only: tuple[str, ...] = EXPERIMENTS, log: Callable[[str], None] = print, *,
                 overwrite: bool = False) -> dict:
    """Run [P1]'s experiments ``only`` (default all) into ``out/p1/`` and write ``out/p1/REPORT.md``.

    ``out/p1`` is checked first and written atomically (:mod:`phasedyn.compare._folders`): the run writes into a
    temporary sibling folder that replaces ``out/p1`` whole (an earlier reproduction included) only once everything
    is written; ``overwrite``: replace a non-empty ``out/p1`` that holds no phasedyn output.

    Returns ``{"results": {name: result}, "report": path, "total_s": seconds}``; each result has ``rows``,
    ``setting``, ``details``, ``wall_time_s`` and ``files``.
    """
    for name in only:
        if name not in RUNNERS:
            raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    target = Path(out) / "p1"
    check_out(target, overwrite, name="--out (its p1/ folder)")
    cfgs = configs(quick)
    results, start = {}, time.perf_counter()
    with staged(target, overwrite) as root:  # OUT/p1 is replaced whole when everything has been written
        for name in only:
            log(f"[{name}] {TITLES[name]} ...")
            results[name] = RUNNERS[name](cfgs[name], root, quick=quick, progress=progress)
            log(f"[{name}] done in {results[name]['wall_time_s']:.1f} s")
        total = time.perf_counter() - start
        report = write_report(results, root, quick, total)
    for r in results.values():
        r["files"] = [target / Path(f).relative_to(root) for f in r["files"]]
    return {"results": results, "report": target / Path(report).relative_to(root), "total_s": total}


def check_reproduce_out(out: Path, overwrite: bool = False) -> Path:
    """The checked ``OUT/p1`` folder of ``reproduce_p1(out)`` (:func:`~phasedyn.compare._folders.check_out`):
    ``ValueError`` naming ``--out`` before anything is printed or run."""
    return check_out(Path(out) / "p1", overwrite, name="--out (its p1/ folder)")
