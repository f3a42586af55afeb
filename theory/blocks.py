r"""Spectral-block systems: one symbolic right-hand side, vectorised over blocks of eigen-directions.

The eigen-directions of :math:`\Sigma` are grouped into :math:`B` blocks; block :math:`j` has
:math:`n_j` directions, representative eigenvalue :math:`\lambda_j`, target energy
:math:`p_j = \sum_{i\in j} (w^*_i)^2` and statistics

.. math:: m_j = \sum_{i\in j} w_i w^*_i, \qquad q_j = \sum_{i\in j} w_i^2 .

With :math:`P_j` the block projector and :math:`\Sigma P_j \approx \lambda_j P_j` (exact when every
block holds one eigenvalue, in particular for :math:`B = d`: the exact per-mode system), the
:class:`~phasedyn.theory.derive.Family` of :math:`A = P_j` is :math:`w^\top P_j\Sigma^k w = \lambda_j^k q_j`,
:math:`w^\top P_j\Sigma^k w^* = \lambda_j^k m_j`, :math:`w^{*\top}P_j\Sigma^k w^* = \lambda_j^k p_j`,
:math:`\mathrm{tr}(P_j\Sigma^k) = n_j\lambda_j^k`, and the local fields are the sums
:math:`u = \sum_j \lambda_j m_j`, :math:`s = \sum_j\lambda_j q_j`, :math:`s^* = \sum_j\lambda_j p_j`.
:mod:`~phasedyn.theory.derive` then gives :math:`\dot m_j, \dot q_j` (gradient flow, online SGD) or the
exact GD map, e.g. for gradient flow :math:`\dot m_j = -\lambda_j(\alpha m_j + \beta p_j)`,
:math:`\dot q_j = -2\lambda_j(\alpha q_j + \beta m_j)`. The per-block expression is derived once, with
block-local symbols, and compiled once; :math:`B` only sets array sizes.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property, lru_cache
from typing import Callable, Literal, Mapping

import jax.numpy as jnp
import numpy as np
import sympy as sp

from phasedyn.typing import ObservableVector, ParamVector, Scalar, StateVector

from . import derive as D
from . import symbols as S
from .model import Model
from .validate import check_choice, check_int
from .problem import Problem
from .system import AbstractSystem, Kind

Optimizer = Literal["gf", "sgd", "gd", "spherical-sgd", "sigma-spherical-sgd"]
OPTIMIZERS = ("gf", "sgd", "gd", "spherical-sgd", "sigma-spherical-sgd")

# block-local symbols
m, q = sp.symbols("m q", real=True)
lam, p, n = sp.symbols("lambda p n", positive=True)

BLOCK_FAMILY = D.Family(
    ww=lambda k: lam**k * q, ws=lambda k: lam**k * m, ss=lambda k: lam**k * p, tr=lambda k: n * lam**k
)


# global sums the spherical normalisation needs: S_k = sum_j lambda_j^k q_j, U_k, P_k likewise, T_k = tr Sigma^k
S2, U2, P2, S3, U3, P3, T1, T2 = sp.symbols("S_2 U_2 P_2 S_3 U_3 P_3 T_1 T_2", real=True)
GLOBALS = (S2, U2, P2, S3, U3, P3, T1, T2)
#: the families of the two norms' weights, B = I and B = Sigma, in global sums (k <= 2 is all the flows use)
NORM_FAMILY = {
    "spherical-sgd": D.Family(ww=lambda k: (None, S.s, S2)[k], ws=lambda k: (None, S.u, U2)[k],
                              ss=lambda k: (None, S.s_star, P2)[k], tr=lambda k: (None, T1)[k]),
    "sigma-spherical-sgd": D.Family(ww=lambda k: (None, S2, S3)[k], ws=lambda k: (None, U2, U3)[k],
                                    ss=lambda k: (None, P2, P3)[k], tr=lambda k: (None, T2)[k]),
}


def block_equations(optimizer: Optimizer = "gf", model: Model | str | sp.Expr | None = None) -> tuple[sp.Expr, sp.Expr]:
    r"""The derived per-block right-hand sides :math:`(f_m, f_q)` in block symbols ``(m, q, lambda, p, n)``
    and the global fields ``(u, s, s_star)`` (plus ``eta``, ``sigma``), for ``model``'s loss (cached)."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    return _block_equations(optimizer, Model.coerce(model))


@lru_cache(maxsize=16)
def _block_equations(optimizer: Optimizer, model: Model) -> tuple[sp.Expr, sp.Expr]:
    coef = D.derive_loss(model.expr)
    subs = D.fields(S.u, S.s, S.s_star)
    if optimizer == "gd":
        return D.linear_gd_map(coef, BLOCK_FAMILY, subs), D.quadratic_gd_map(coef, BLOCK_FAMILY, subs)
    if optimizer in NORM_FAMILY:  # renormalised every step, |w| = 1 or w.Sigma w = 1 (derive.spherical_*_flow)
        Bn = NORM_FAMILY[optimizer]
        return (D.spherical_linear_flow(coef, BLOCK_FAMILY, Bn, subs),
                D.spherical_quadratic_flow(coef, BLOCK_FAMILY, Bn, subs))
    return (D.linear_flow(coef, BLOCK_FAMILY, subs),
            D.quadratic_flow(coef, BLOCK_FAMILY, subs, sgd=optimizer == "sgd"))


@dataclasses.dataclass(frozen=True, eq=False)
class BlockSystem(AbstractSystem):
    r"""The spectral-block (or, with :math:`B = d`, exact per-mode) system for ``optimizer``.

    State vector: ``[m_1..m_B, q_1..q_B]``. Parameter vector: ``[eta, sigma, lambda_1..B, p_1..B, n_1..B]``
    (``eta`` is ignored by gradient flow). Observables, in the theory's names (docs/theory.md §1, §3(B)):
    ``u`` :math:`= u^{(1)} = \sum_j\lambda_j m_j`, ``s`` :math:`= s^{(1)} = \sum_j\lambda_j q_j`, ``u_0``, ``s_0``
    (:math:`\Sigma^0`), ``u_2``, ``s_2`` (:math:`\Sigma^2`; the hierarchy's ``u_k``, ``s_k``), ``loss``, ``mse``.
    """

    B: int
    optimizer: Optimizer = "gf"
    model: Model | str | sp.Expr | None = None

    def __post_init__(self) -> None:
        check_int("B", self.B, 1)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        object.__setattr__(self, "model", Model.coerce(self.model))

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"blocks-{self.optimizer}-B{self.B}{self.model.tag}"

    @property
    def kind(self) -> Kind:  # type: ignore[override]
        return "map" if self.optimizer == "gd" else "flow"

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(f"m_{j}" for j in range(self.B)) + tuple(f"q_{j}" for j in range(self.B))

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("eta", "sigma") + tuple(f"{x}_{j}" for x in ("lambda", "p", "n") for j in range(self.B))

    @property
    def observable_names(self) -> tuple[str, ...]:
        return ("u", "s", "u_0", "s_0", "u_2", "s_2", "loss", "mse")

    @cached_property
    def _key(self) -> tuple:
        return ("blocks", self.optimizer, self.B, self.model.loss)

    def equations(self) -> tuple[sp.Expr, sp.Expr]:
        """The per-block ``(dm/dt, dq/dt)`` (or the map ``(m', q')``), see :func:`block_equations`."""
        return block_equations(self.optimizer, self.model)

    def latex(self) -> str:
        f_m, f_q = self.equations()
        lhs = (r"\dot m_j", r"\dot q_j") if self.kind == "flow" else ("m_j'", "q_j'")
        body = r" \\ ".join(f"{l} &= {S.latex(sp.collect(sp.expand(f), [lam, S.eta]))}" for l, f in zip(lhs, (f_m, f_q)))
        return r"\begin{aligned}" + body.replace(r"\lambda", r"\lambda_j") + r"\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"

    # --------------------------------------------------------------- packing
    def pack_state(self, y0: Mapping[str, object] | object) -> np.ndarray:
        """From ``{"m": (..., B), "q": (..., B)}`` or a flat ``(..., 2B)`` array."""
        if isinstance(y0, Mapping):
            mq = np.broadcast_arrays(np.asarray(y0["m"], float), np.asarray(y0["q"], float))
            out = np.concatenate(mq, axis=-1)
        else:
            out = np.asarray(y0, float)
        if out.ndim == 0 or out.shape[-1] != 2 * self.B:
            raise ValueError(f"y0 must have last axis 2B = {2 * self.B} ([m, q]), got shape {out.shape}")
        if not np.all(np.isfinite(out)):
            raise ValueError("y0 must be finite (no NaN or inf)")
        return out

    def pack_params(self, params: Mapping[str, object] | object) -> np.ndarray:
        """From ``{"eta", "sigma", "lambda": (B,), "p": (B,), "n": (B,)}`` or a flat array."""
        if isinstance(params, Mapping):
            scalars = [np.asarray(params.get(k, 0.0), float) for k in ("eta", "sigma")]
            vectors = []
            for key in ("lambda", "p", "n"):
                arr = np.asarray(params[key], float)
                if arr.shape[-1:] != (self.B,):
                    raise ValueError(f"params[{key!r}] must have last axis B = {self.B}, got shape {arr.shape}")
                vectors.append(arr)
            batch = np.broadcast_shapes(*[x.shape for x in scalars], *[v.shape[:-1] for v in vectors])
            out = np.concatenate([np.broadcast_to(x, batch)[..., None] for x in scalars]
                                 + [np.broadcast_to(v, batch + (self.B,)) for v in vectors], axis=-1)
        else:
            out = np.asarray(params, float)
        if out.ndim == 0 or out.shape[-1] != 2 + 3 * self.B:
            raise ValueError(f"params must have last axis 2 + 3B = {2 + 3 * self.B}, got shape {out.shape}")
        if not np.all(np.isfinite(out)):
            raise ValueError("params must be finite (no NaN or inf)")
        lam_ = out[..., 2:2 + self.B]
        if np.any(lam_ <= 0):
            raise ValueError("block eigenvalues lambda must be > 0")
        if self.optimizer != "gf" and np.any(out[..., 0] <= 0):
            raise ValueError(f"eta must be > 0 for optimizer {self.optimizer!r} (allowed range (0, inf))")
        return out

    # --------------------------------------------------------------- compiled functions
    @property
    def vector_field(self) -> Callable:
        return _compiled(self._key, self.optimizer, self.model, self.B)[0]

    @property
    def observable_fn(self) -> Callable:
        return _compiled(self._key, self.optimizer, self.model, self.B)[1]


@lru_cache(maxsize=64)
def _compiled(key: tuple, optimizer: str, model: Model, B: int) -> tuple[Callable, Callable]:
    f_m, f_q = block_equations(optimizer, model)
    args = (m, q, lam, p, n, S.u, S.s, S.s_star, S.eta, S.sigma, GLOBALS)
    raw = sp.lambdify(args, [f_m, f_q], modules="jax", cse=True, docstring_limit=0)
    loss = sp.lambdify((S.u, S.s, S.s_star, S.sigma), D.derive_loss(model.expr).loss, modules="jax", docstring_limit=0)

    def split(y, prm):
        return y[:B], y[B:], prm[0], prm[1], prm[2:2 + B], prm[2 + B:2 + 2 * B], prm[2 + 2 * B:]

    def field(t: Scalar, y: StateVector, prm: ParamVector) -> StateVector:
        del t
        mm, qq, eta, sigma, ll, pp, nn = split(y, prm)
        u, s, s_star = jnp.sum(ll * mm), jnp.sum(ll * qq), jnp.sum(ll * pp)
        l2, l3 = ll**2, ll**3
        glob = (jnp.sum(l2 * qq), jnp.sum(l2 * mm), jnp.sum(l2 * pp), jnp.sum(l3 * qq), jnp.sum(l3 * mm),
                jnp.sum(l3 * pp), jnp.sum(nn * ll), jnp.sum(nn * l2))
        dm, dq = raw(mm, qq, ll, pp, nn, u, s, s_star, eta, sigma, glob)
        return jnp.concatenate([jnp.broadcast_to(dm, mm.shape), jnp.broadcast_to(dq, qq.shape)])

    def observables(y: StateVector, prm: ParamVector) -> ObservableVector:
        mm, qq, eta, sigma, ll, pp, nn = split(y, prm)
        u, s, s_star = jnp.sum(ll * mm), jnp.sum(ll * qq), jnp.sum(ll * pp)
        u_0, s_0, s_star_0 = jnp.sum(mm), jnp.sum(qq), jnp.sum(pp)
        u_2, s_2 = jnp.sum(ll**2 * mm), jnp.sum(ll**2 * qq)
        mse = (s_0 + s_star_0 - 2 * jnp.abs(u_0)) / jnp.sum(nn)
        return jnp.stack([u, s, u_0, s_0, u_2, s_2, jnp.asarray(loss(u, s, s_star, sigma), y.dtype) + 0 * u, mse])

    return field, observables


# ----------------------------------------------------------------------------- blocks from a problem
@dataclasses.dataclass(frozen=True)
class Blocks:
    """A partition of the eigen-directions into blocks: ``index[i]`` is the block of direction ``i``."""

    index: np.ndarray
    B: int

    def sums(self, x: np.ndarray) -> np.ndarray:
        """Per-block sums of a per-direction array (last axis ``d``), shape ``(..., B)``."""
        x = np.asarray(x, float)
        flat = x.reshape(-1, x.shape[-1])
        out = np.stack([np.bincount(self.index, weights=row, minlength=self.B) for row in flat])
        return out.reshape(x.shape[:-1] + (self.B,))


def make_blocks(lam: np.ndarray, B: int | None = None) -> Blocks:
    r"""Group the spectrum into ``B`` log-spaced blocks in :math:`\lambda` (``None`` or ``B >= d``: one per direction).

    Empty log-bins are dropped, so the returned ``Blocks.B`` may be smaller than asked.
    """
    lam = np.asarray(lam, float)
    d = lam.shape[0]
    if B is None or B >= d:
        return Blocks(np.arange(d), d)
    B = check_int("B", B, 1)
    edges = np.geomspace(lam.min(), lam.max(), B + 1)
    raw = np.clip(np.searchsorted(edges, lam, side="right") - 1, 0, B - 1)
    used, index = np.unique(raw, return_inverse=True)
    return Blocks(index.astype(int), int(used.size))


def block_params(problem: Problem, blocks: Blocks, eta: float = 0.0) -> dict[str, np.ndarray | float]:
    r"""Block parameters of a problem: :math:`\lambda_j` (the target-energy-weighted mean eigenvalue of the
    block, plain mean where the target has no energy), :math:`p_j`, :math:`n_j`, plus ``eta``, ``sigma``."""
    n_j = np.bincount(blocks.index, minlength=blocks.B).astype(float)
    p_j = blocks.sums(problem.w_star**2)
    lam_mean = blocks.sums(problem.lam) / n_j
    lam_w = np.divide(blocks.sums(problem.lam * problem.w_star**2), p_j, out=lam_mean.copy(), where=p_j > 0)
    return {"eta": float(eta), "sigma": problem.sigma, "lambda": lam_w, "p": p_j, "n": n_j}


def block_state(problem: Problem, blocks: Blocks, w: np.ndarray) -> dict[str, np.ndarray]:
    """Block statistics ``m_j, q_j`` of weights ``w`` (shape ``(..., d)``)."""
    w = np.asarray(w, float)
    return {"m": blocks.sums(w * problem.w_star), "q": blocks.sums(w * w)}
