r"""A summary-statistic system: states, parameters, sympy right-hand side, LaTeX, compiled JAX field.

A :class:`System` is either a *flow* :math:`\dot y = f(y; p)` (gradient flow, online-SGD mean field)
or a *map* :math:`y_{k+1} = F(y_k; p)` (exact population GD, one step = time :math:`\eta`).
Compilation (sympy → JAX through :func:`sympy.lambdify` with common-subexpression elimination) is
cached on the system's structure, so building the same system twice compiles once.
"""

from __future__ import annotations

import abc
import dataclasses
from functools import cached_property, lru_cache
from typing import Callable, Literal, Mapping

import jax.numpy as jnp
import numpy as np
import sympy as sp

Kind = Literal["flow", "map"]


class AbstractSystem(abc.ABC):
    """What :func:`~phasedyn.theory.solve` and :func:`~phasedyn.theory.iterate` need of a system.

    Concrete systems: :class:`System` (one sympy expression per state) and
    :class:`~phasedyn.theory.blocks.BlockSystem` (one symbolic right-hand side vectorised over blocks).
    """

    name: str
    kind: Kind

    @property
    @abc.abstractmethod
    def state_names(self) -> tuple[str, ...]: ...

    @property
    @abc.abstractmethod
    def param_names(self) -> tuple[str, ...]: ...

    @property
    @abc.abstractmethod
    def observable_names(self) -> tuple[str, ...]: ...

    @property
    @abc.abstractmethod
    def vector_field(self) -> Callable: ...

    @property
    @abc.abstractmethod
    def observable_fn(self) -> Callable: ...

    @property
    @abc.abstractmethod
    def _key(self) -> tuple: ...

    @abc.abstractmethod
    def pack_state(self, y0: object) -> np.ndarray: ...

    @abc.abstractmethod
    def pack_params(self, params: object) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True, eq=False)
class System(AbstractSystem):
    r"""An ODE (``kind="flow"``) or exact map (``kind="map"``) on summary statistics.

    Attributes:
        name: short identifier, e.g. ``"isotropic-gf"``.
        states: state symbols, in the order of the state vector.
        params: parameter symbols, in the order of the parameter vector.
        rhs: :math:`f(y; p)` (flow) or :math:`F(y; p)` (map), one expression per state.
        observables: named expressions of states and parameters (``loss``, ``mse``, ...).
        kind: ``"flow"`` or ``"map"``.
        description: one line for plots and reports.
    """

    name: str
    states: tuple[sp.Symbol, ...]
    params: tuple[sp.Symbol, ...]
    rhs: tuple[sp.Expr, ...]
    observables: tuple[tuple[str, sp.Expr], ...] = ()
    kind: Kind = "flow"
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.rhs) != len(self.states):
            raise ValueError(f"rhs has {len(self.rhs)} entries for {len(self.states)} states")
        if self.kind not in ("flow", "map"):
            raise ValueError(f"kind must be 'flow' or 'map', got {self.kind!r}")
        known = set(self.states) | set(self.params)
        for label, expr in [*zip(map(str, self.states), self.rhs), *self.observables]:
            unknown = sp.sympify(expr).free_symbols - known
            if unknown:
                raise ValueError(
                    f"{self.name}: expression for {label} uses {sorted(map(str, unknown))}, "
                    "which are neither states nor parameters"
                )

    # ----------------------------------------------------------------- names and views
    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(map(str, self.states))

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(map(str, self.params))

    @property
    def observable_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.observables)

    def equations(self) -> dict[sp.Symbol, sp.Expr]:
        """``{state: rhs}``."""
        return dict(zip(self.states, self.rhs))

    def latex(self) -> str:
        r"""The system as a LaTeX ``aligned`` block (:math:`\dot y = f` or :math:`y' = F`)."""
        from .symbols import latex

        lhs = (lambda x: rf"\dot{{{latex(x)}}}") if self.kind == "flow" else (lambda x: rf"{latex(x)}'")
        rows = [rf"{lhs(x)} &= {latex(sp.factor_terms(f))}" for x, f in zip(self.states, self.rhs)]
        return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"

    def jacobian(self) -> sp.Matrix:
        r""":math:`\partial f_i/\partial y_j` (symbolic)."""
        return sp.Matrix(self.rhs).jacobian(sp.Matrix(self.states))

    # ----------------------------------------------------------------- packing
    def pack_state(self, y0: Mapping[str, object] | object) -> np.ndarray:
        """State vector(s) from a ``{name: value}`` mapping or an array ``(..., n_states)``."""
        return _pack(y0, self.state_names, "y0")

    def pack_params(self, params: Mapping[str, object] | object) -> np.ndarray:
        """Parameter vector(s) from a ``{name: value}`` mapping or an array ``(..., n_params)``."""
        return _pack(params, self.param_names, "params")

    # ----------------------------------------------------------------- compiled JAX functions
    @cached_property
    def _key(self) -> tuple:
        return (
            self.kind,
            tuple(sp.srepr(x) for x in self.states),
            tuple(sp.srepr(x) for x in self.params),
            tuple(sp.srepr(f) for f in self.rhs),
            tuple((n, sp.srepr(e)) for n, e in self.observables),
        )

    @property
    def vector_field(self) -> Callable:
        """Compiled ``f(t, y, p) -> dy`` (flow) or ``F(t, y, p) -> y'`` (map), JAX-traceable, batched via vmap."""
        return _compile_rhs(self._key, self.states, self.params, self.rhs)

    @property
    def observable_fn(self) -> Callable:
        """Compiled ``obs(y, p) -> array (n_observables,)``."""
        return _compile_obs(self._key, self.states, self.params, tuple(e for _, e in self.observables))

    def evaluate(self, y: Mapping[str, float] | object, params: Mapping[str, float] | object) -> np.ndarray:
        """The right-hand side evaluated by sympy in exact arithmetic (then float64): an independent check."""
        y = self.pack_state(y)
        p = self.pack_params(params)
        sub = {**dict(zip(self.states, map(sp.Float, y, [30] * len(y)))),
               **dict(zip(self.params, map(sp.Float, p, [30] * len(p))))}
        return np.array([float(sp.N(f.xreplace(sub), 30)) for f in self.rhs])


def _pack(value: Mapping[str, object] | object, names: tuple[str, ...], what: str) -> np.ndarray:
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        extra = [k for k in value if k not in names]
        if missing or extra:
            raise ValueError(f"{what} needs exactly the names {list(names)}; missing {missing}, unexpected {extra}")
        arrays = np.broadcast_arrays(*[np.asarray(value[n], dtype=np.float64) for n in names])
        out = np.stack(arrays, axis=-1)
    else:
        out = np.asarray(value, dtype=np.float64)
        if out.ndim == 0 or out.shape[-1] != len(names):
            raise ValueError(f"{what} must have last axis of length {len(names)} ({list(names)}), got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} must be finite (no NaN or inf), got {out}")
    return out


def _stack(values: list, like: jnp.ndarray) -> jnp.ndarray:
    return jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype=like.dtype), like.shape[:-1]) for v in values], axis=-1)


@lru_cache(maxsize=256)
def _lambdify(key: tuple, args: tuple, exprs: tuple) -> Callable:
    return sp.lambdify(args, list(exprs), modules="jax", cse=True, docstring_limit=0)


@lru_cache(maxsize=256)
def _compile_rhs(key: tuple, states: tuple, params: tuple, rhs: tuple) -> Callable:
    raw = _lambdify(("rhs", key), (states, params), rhs)

    def field(t, y, p):
        del t
        return _stack(raw(y, p), y)

    return field


@lru_cache(maxsize=256)
def _compile_obs(key: tuple, states: tuple, params: tuple, obs: tuple) -> Callable:
    if not obs:
        return lambda y, p: jnp.zeros((0,), dtype=y.dtype)
    raw = _lambdify(("obs", key), (states, params), obs)

    def observables(y, p):
        return _stack(raw(y, p), y)

    return observables
