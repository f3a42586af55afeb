"""[P1]'s experiments: names, folders, titles, the phase-detector thresholds and each experiment's configuration
(the paper's setting, or the ``--quick`` one)."""

from __future__ import annotations

import dataclasses
from typing import Any

PAPER = "[P1] Braun, Loureiro, Minh, Imaizumi, arXiv:2511.18661"
EXPERIMENTS = ("E1", "E2", "E3", "E4", "E5")
FOLDERS = {"E1": "e1_fig2", "E2": "e2_escape", "E3": "e3_phase3", "E4": "e4_sgd_noise", "E5": "e5_phase2"}
TITLES = {"E1": "Fig. 2: a = 2, d = 1000, GD η = 1e-2, u, s, MSE", "E2": "u(t) through escape for several a",
          "E3": "Phase-III approximation at d = 300", "E4": "online SGD, a ≤ 1.5, label noise N(0, 0.05)",
          "E5": "log(1 − u) vs log t, Phase-II exponent"}
DELTA, EPS = 0.1, 0.05
"""Phase detector thresholds used everywhere: T1 at |u| >= DELTA, T2 with u, s within EPS of s*."""
RHO_WINDOW = (1e-4, 1e-2)
"""|u| window of the ρ fit for E2's small-init runs: deep in the linear phase (s ~ u² <= 1e-4), past the transient."""


# ----------------------------------------------------------------------------- configurations
@dataclasses.dataclass(frozen=True)
class E1Config:
    """[P1] Fig. 2: a = 2, d = 1000, population GD at η = 1e-2 for 1e7 steps (paper setting by default)."""

    a: float = 2.0
    d: int = 1000
    eta: float = 1e-2
    steps: int = 10**7
    seeds: int = 1
    seed: int = 0
    n_record: int = 400
    paper_steps: int = 10**7
    rtol: float = 1e-8
    dpi: int = 300


@dataclasses.dataclass(frozen=True)
class E2Config:
    """u(t) through escape for several a at d = 1000, GD η = 1e-3 (unit-sphere start, [P1]'s), plus a run from
    ``small_init`` × the same directions, whose long linear phase lets the slope ρ be fitted."""

    a_values: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0)
    d: int = 1000
    eta: float = 1e-3
    steps: int = 50_000
    seeds: int = 4
    seed: int = 0
    small_init: float = 1e-6
    n_record: int = 300
    rtol: float = 1e-8
    dpi: int = 300


@dataclasses.dataclass(frozen=True)
class E3Config:
    """Phase III at d = 300, a = 2: GD η = 1e-2 against gradient flow, past the time every direction is learned."""

    a: float = 2.0
    d: int = 300
    eta: float = 1e-2
    steps: int = 2 * 10**6
    seeds: int = 2
    seed: int = 0
    n_record: int = 400
    rtol: float = 1e-8
    dpi: int = 300


@dataclasses.dataclass(frozen=True)
class E4Config:
    """Online SGD for a ∈ {0.5, 1, 1.5} with label noise of *variance* 0.05 (σ = √0.05), mean-field theory."""

    a_values: tuple[float, ...] = (0.5, 1.0, 1.5)
    d: int = 500
    eta: float = 0.02
    steps: int = 150_000
    seeds: int = 4
    seed: int = 0
    noise_var: float = 0.05
    n_record: int = 300
    align: float = DELTA
    rtol: float = 1e-8
    dpi: int = 300


@dataclasses.dataclass(frozen=True)
class E5Config:
    """Phase II, log(1 − u) vs log t for several d (a = 2): exact GF for every d, GD simulation for ``sim_d``."""

    a: float = 2.0
    d_values: tuple[int, ...] = (500, 2000, 5000)
    sim_d: tuple[int, ...] = (500, 2000, 5000)
    eta: float = 1e-2
    steps: int = 10**6
    seeds: int = 2
    seed: int = 0
    n_record: int = 300
    rtol: float = 1e-8
    dpi: int = 300


FULL = {"E1": E1Config(), "E2": E2Config(), "E3": E3Config(), "E4": E4Config(), "E5": E5Config()}
_Q = {"rtol": 1e-6, "dpi": 150}  # --quick: looser theory tolerance (same numbers to ~4 digits), lighter PNGs
QUICK = {  # E3 and E5's d = 300, E1 and E5's d = 1000 share grid and batch shapes: one compilation each
    "E1": E1Config(steps=10**5, n_record=200, **_Q),
    "E2": E2Config(steps=20_000, seeds=2, n_record=200, **_Q),
    "E3": E3Config(steps=10**5, seeds=1, n_record=200, **_Q),
    "E4": E4Config(d=200, steps=15_000, seeds=2, n_record=200, **_Q),
    "E5": E5Config(d_values=(300, 1000), sim_d=(300,), steps=10**5, seeds=1, n_record=200, **_Q),
}


def configs(quick: bool = False) -> dict[str, Any]:
    """The configuration of each experiment: [P1]'s (or the largest practical) setting, or the ``--quick`` one."""
    return dict(QUICK if quick else FULL)
