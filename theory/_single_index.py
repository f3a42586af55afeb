r"""Single-index models from anisotropic data ([P3]; docs/theory.md §5): their problems, what is reported about the
model (Hermite coefficients, information exponent) and the candidate effective dimensions of a spectrum.

The dynamics themselves are the existing systems: :meth:`~phasedyn.theory.Model.single_index` is a loss like any
other, and the isotropic (u, s) and exact per-mode systems derive its drift and noise (through quadrature where the
link is not a polynomial, :mod:`._derive_numeric`), for gradient flow, population GD, vanilla and spherical online
SGD.

Spectra (all with :math:`w^{*\top}\Sigma w^* = 1`, the start uniform on the unit sphere):

* ``"isotropic"``: :math:`\Sigma = I_d`;
* ``"powerlaw"``: :math:`\lambda_i \propto i^{-a}`, rescaled to :math:`\mathrm{tr}\,\Sigma = d` so that the noise scale
  :math:`\eta\,\mathrm{tr}\,\Sigma` compares with the isotropic one at equal :math:`\eta d`;
* ``"spiked"``: :math:`\Sigma = I + \theta e_1e_1^\top` with the target along the spike (``spike="signal"``,
  :math:`w^* = e_1/\sqrt{1+\theta}`, Mousavi-Hosseini et al.'s setting) or orthogonal to it (``"orthogonal"``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .model import Model
from .problem import Problem, make_w0, make_w_star, powerlaw_spectrum
from .validate import check_choice, check_greater, check_int, check_positive

SINGLE_INDEX_SPECTRA = ("isotropic", "powerlaw", "spiked")
SPIKES = ("signal", "orthogonal")


def single_index_problem(d: int, spectrum: str = "isotropic", *, a: float = 1.0, theta: float = 4.0,
                         spike: str = "signal", seed: int = 0, sigma: float = 0.0) -> Problem:
    """The problem of a single-index experiment (module docstring); ``seed`` draws :math:`w^*` and the start."""
    d = check_int("d", d, 2)
    check_choice("spectrum", spectrum, SINGLE_INDEX_SPECTRA)
    check_choice("spike", spike, SPIKES)
    meta: dict[str, Any] = {"d": d, "spectrum": spectrum, "seed": int(seed), "init_seed": int(seed)}
    if spectrum == "isotropic":
        lam = np.ones(d)
    elif spectrum == "powerlaw":
        with warnings.catch_warnings():  # a <= 1 is a valid spectrum here ([P1]'s asymptotics are not used)
            warnings.simplefilter("ignore", UserWarning)
            lam = d * powerlaw_spectrum(d, check_positive("a", a))
        meta["a"] = float(a)
    else:
        lam = np.ones(d)
        lam[0] += check_greater("theta", theta, -1.0)
        meta.update(theta=float(theta), spike=spike)
    if spectrum == "spiked" and spike == "signal":
        w_star = np.zeros(d)
        w_star[0] = 1.0 / np.sqrt(lam[0])
    else:
        v = np.eye(d)[0] if spectrum == "spiked" else None
        w_star = make_w_star(lam, seed, "s_star", orthogonal_to=v)
    kind = "isotropic" if spectrum == "isotropic" else "spiked" if spectrum == "spiked" else "powerlaw"
    return Problem(lam, w_star, make_w0(d, seed), float(sigma), kind, meta)


def effective_dimensions(lam: np.ndarray, w_star: np.ndarray) -> dict[str, float]:
    r"""The candidate effective dimensions of docs/theory.md §5 for a spectrum and target (each :math:`d` for
    :math:`\Sigma = I`):

    * ``"trace_over_max"``: :math:`\mathrm{tr}\,\Sigma/\lambda_{\max}`;
    * ``"participation"``: :math:`(\mathrm{tr}\,\Sigma)^2/\mathrm{tr}\,\Sigma^2`;
    * ``"signal"``: :math:`\mathrm{tr}\,\Sigma/r^*`, :math:`r^* = w^{*\top}\Sigma^2w^*/w^{*\top}\Sigma w^*`. For a start
      uniform on the sphere :math:`\mathbb E[u_0^2]/(s_0 s^*) \approx r^*/\mathrm{tr}\,\Sigma`: it is the inverse squared
      initial overlap in the :math:`\Sigma`-geometry, the quantity the escape from :math:`u_0` starts at
      (docs/theory.md §5(B));
    * ``"d"``: the ambient dimension, for reference.
    """
    lam, w_star = np.asarray(lam, float), np.asarray(w_star, float)
    tr, tr2 = lam.sum(), (lam**2).sum()
    r_star = float(np.sum(lam**2 * w_star**2) / np.sum(lam * w_star**2))
    return {"trace_over_max": float(tr / lam.max()), "participation": float(tr**2 / tr2),
            "signal": float(tr / r_star), "d": float(lam.size)}


#: the largest share of the trace one eigenvalue may carry before the mean-field closure is flagged (docs/theory.md §5)
HEAVY_SHARE = 0.05


def heavy_mode_note(lam: np.ndarray) -> str | None:
    r"""A warning when one eigenvalue carries more than :data:`HEAVY_SHARE` of :math:`\mathrm{tr}\,\Sigma` (power law
    with :math:`a > 1`, a strong spike): that mode's own :math:`O(\eta)` fluctuations do not average out as :math:`d`
    grows, so the per-mode mean field misses them (measured: the gap does not shrink with :math:`d`); else None."""
    share = float(np.max(lam) / np.sum(lam))
    if share <= HEAVY_SHARE:
        return None
    return (f"lambda_max carries {share:.2f} of tr Sigma (> {HEAVY_SHARE}): the mean-field theory omits that mode's own "
            "fluctuations, so the online-SGD gap need not shrink with d (docs/theory.md section 5)")


def model_report(link: str, activation: str | None, loss: str, k_max: int = 6) -> dict[str, Any]:
    """summary.json's ``model`` of a single-index run: the link and activation with their Hermite coefficients
    (:func:`~phasedyn.theory.hermite_expansion`), the information exponent of the link, the loss and its text."""
    from ._links import hermite_expansion

    act = link if activation is None else activation
    he_link, he_act = hermite_expansion(link, k_max), hermite_expansion(act, k_max)
    model = Model.single_index(link, activation, loss)
    return {"link": link, "activation": act, "loss": loss, "expression": model.loss,
            "hermite_link": list(he_link.coefficients), "hermite_activation": list(he_act.coefficients),
            "information_exponent": he_link.information_exponent,
            "phase_retrieval": model.is_phase_retrieval}
