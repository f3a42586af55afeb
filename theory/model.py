r"""The learning problem's model: the per-sample loss :math:`\ell(g, h, \xi)`, shared by theory and simulation.

A :class:`Model` is data, not equations (docs/theory.md §1): the per-sample loss as a polynomial in the
local fields :math:`g = x\cdot w`, :math:`h = x\cdot w^*` and the label noise :math:`\xi\sim N(0,\sigma^2)`
(:math:`\sigma` is the problem's, :attr:`phasedyn.theory.Problem.sigma`). The default is phase
retrieval, :math:`\ell = (g^2 - h^2 - \xi)^2`.

* theory/ derives every system and every prediction from :attr:`Model.expr` (Isserlis moments, Stein's
  lemma; :mod:`phasedyn.theory.derive`);
* simulate/ evaluates the *same* loss in JAX (:meth:`Model.jax_loss`) and differentiates it with
  ``jax.grad``; no derived equation crosses, so agreement between the two is evidence.

Text losses (the command line's ``--loss``) are parsed by :func:`parse_loss` over a whitelist: the names
``g``, ``h``, ``xi``, numbers, ``+ - * / ** ( ) ,`` and the functions of :data:`LOSS_FUNCTIONS` (ReLU, tanh, erf,
sigmoid, ``|.|``, ``Max``/``Min``, ``exp``: the links of single-index models, docs/theory.md §5); anything else is
refused naming the token, and no Python code is evaluated. A loss must be a polynomial in ``xi``; in ``g`` and
``h`` it may be any such expression: polynomial losses are derived exactly (Isserlis), the others through
Gaussian quadrature (:mod:`phasedyn.theory._derive_numeric`). This module imports sympy only when a loss is parsed, so importing it (and
:mod:`phasedyn.simulate`) stays light.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import tokenize
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    import sympy as sp

#: the phase-retrieval per-sample loss of docs/theory.md §1, as text
PHASE_RETRIEVAL = "(g**2 - h**2 - xi)**2"

#: names a loss may use: the local fields and the label noise
LOSS_SYMBOLS = ("g", "h", "xi")

_ALLOWED_OPS = {"+", "-", "*", "/", "**", "(", ")", ","}

#: functions a loss may use (the single-index links): name → sympy constructor
LOSS_FUNCTIONS = ("relu", "tanh", "erf", "sigmoid", "abs", "Abs", "Max", "Min", "exp")


def _sympy_functions() -> dict:
    import sympy as sp

    return {"relu": lambda x: sp.Max(0, x), "tanh": sp.tanh, "erf": sp.erf, "sigmoid": lambda x: 1 / (1 + sp.exp(-x)),
            "abs": sp.Abs, "Abs": sp.Abs, "Max": sp.Max, "Min": sp.Min, "exp": sp.exp}


def _check_tokens(text: str) -> None:
    """Refuse anything but the whitelisted names, numbers and arithmetic operators (names the token)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as err:
        raise ValueError(f"loss {text!r} is not a valid expression ({err})") from None
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT):
            continue
        if tok.type == tokenize.NUMBER and "j" not in tok.string.lower():
            continue
        if tok.type == tokenize.NAME and (tok.string in LOSS_SYMBOLS or tok.string in LOSS_FUNCTIONS):
            continue
        if tok.type == tokenize.OP and tok.string in _ALLOWED_OPS:
            continue
        raise ValueError(
            f"loss: token {tok.string!r} is not allowed (allowed: the names {', '.join(LOSS_SYMBOLS)}, "
            f"the functions {', '.join(LOSS_FUNCTIONS)}, numbers and + - * / ** ( ) ,)"
        )


def parse_loss(text: str) -> "sp.Expr":
    r"""Parse a loss given as text (``"(g**2 - h**2)**2 * (1 + h**2)"``, ``"(tanh(g) - relu(h) - xi)**2"``) into a
    sympy expression in ``g, h, xi``.

    Raises:
        ValueError: a token outside the whitelist (named), a syntax error, or an expression that is not
            polynomial in ``xi`` or does not depend on ``g``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"loss must be a non-empty expression in g, h, xi, got {text!r}")
    _check_tokens(text)
    import sympy as sp
    from sympy.parsing.sympy_parser import parse_expr

    from . import symbols as S

    names = {"g": S.g, "h": S.h, "xi": S.xi, "Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
             **_sympy_functions()}
    try:
        expr = parse_expr(text, local_dict=names, global_dict={"__builtins__": {}}, evaluate=True)
    except (SyntaxError, TypeError, ValueError, ZeroDivisionError) as err:
        raise ValueError(f"loss {text!r} is not a valid expression ({type(err).__name__})") from None
    return check_loss(expr)


def check_loss(expr: Any) -> "sp.Expr":
    """A sympy loss checked to be an expression in ``g, h, xi`` built from :data:`LOSS_FUNCTIONS`, polynomial in ``xi``
    and depending on ``g`` (ValueError otherwise)."""
    import sympy as sp

    from . import symbols as S

    expr = sp.sympify(expr)
    extra = expr.free_symbols - {S.g, S.h, S.xi}
    if extra:
        raise ValueError(f"loss must be an expression in g, h, xi only; it also depends on {sorted(map(str, extra))}")
    if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise ValueError(f"loss must be finite, got {sp.sstr(expr)}")
    allowed = (sp.Max, sp.Min, sp.Abs, sp.tanh, sp.erf, sp.exp)
    bad = sorted({type(f).__name__ for f in expr.atoms(sp.Function) if not isinstance(f, allowed)})
    if bad:
        raise ValueError(f"loss: the functions {bad} are not allowed (allowed: {', '.join(LOSS_FUNCTIONS)})")
    if not expr.is_polynomial(S.xi):
        raise ValueError(f"loss must be a polynomial in xi (the label noise), got {sp.sstr(expr)}")
    if not expr.has(S.g):
        raise ValueError(f"loss must depend on g = x·w (the model's output), got {sp.sstr(expr)}")
    return expr


@functools.cache
def _phase_retrieval_expr() -> "sp.Expr":
    """:data:`PHASE_RETRIEVAL` as a sympy expression (parsed once per process)."""
    return parse_loss(PHASE_RETRIEVAL)


@dataclasses.dataclass(frozen=True)
class Model:
    r"""The per-sample loss :math:`\ell(g, h, \xi)` that theory derives from and simulation differentiates.

    Attributes:
        loss: the loss as text in ``g`` (:math:`x\cdot w`), ``h`` (:math:`x\cdot w^*`) and ``xi``
            (label noise :math:`\xi`), canonicalised by sympy (``Model("(g**2-h**2-xi)**2")`` and the
            default compare equal). Default: phase retrieval :data:`PHASE_RETRIEVAL`.

    Example::

        Model()                                        # phase retrieval
        Model("(g**2 - h**2)**2 * (1 + h**2)")         # samples weighted by 1 + h²
        Model.from_expr((g**2 - h**2)**2 * (1 + g**2)) # from a sympy expression
    """

    loss: str = PHASE_RETRIEVAL

    def __post_init__(self) -> None:
        import sympy as sp

        object.__setattr__(self, "loss", sp.sstr(parse_loss(self.loss)))

    @classmethod
    def from_expr(cls, expr: "sp.Expr") -> "Model":
        """A model from a sympy expression in :data:`phasedyn.theory.symbols` ``g, h, xi``."""
        import sympy as sp

        return cls(sp.sstr(check_loss(expr)))

    @classmethod
    def coerce(cls, model: "Model | str | sp.Expr | None") -> "Model":
        """``None`` → the default model; text or a sympy expression → a :class:`Model`; a model as it is."""
        if model is None:
            return cls()
        if isinstance(model, Model):
            return model
        if isinstance(model, str):
            return cls(model)
        if type(model).__module__.startswith("sympy"):
            return cls.from_expr(model)
        raise ValueError(f"model must be a phasedyn.theory.Model, a loss expression or None, got {type(model).__name__}")

    # ------------------------------------------------------------------ views
    @cached_property
    def expr(self) -> "sp.Expr":
        r"""The loss as a sympy expression in ``g, h, xi`` (the symbols of :mod:`phasedyn.theory.symbols`)."""
        return parse_loss(self.loss)

    @cached_property
    def is_phase_retrieval(self) -> bool:
        """Whether the loss equals the phase-retrieval loss as a polynomial (some closed-form predictions exist
        only for it): ``(h**2 - g**2 + xi)**2`` counts, however it is written."""
        import sympy as sp

        return sp.expand(self.expr - _phase_retrieval_expr()) == 0

    @cached_property
    def is_polynomial(self) -> bool:
        """Whether the loss is a polynomial in ``(g, h, xi)`` (then every expectation is exact, by Isserlis)."""
        from . import symbols as S

        return bool(self.expr.is_polynomial(S.g, S.h, S.xi))

    @cached_property
    def degree(self) -> int | None:
        """Total degree of a polynomial loss in ``(g, h, xi)`` (sets the exact Gauss–Hermite order in simulate/);
        ``None`` for a non-polynomial loss."""
        import sympy as sp

        from . import symbols as S

        if not self.is_polynomial:
            return None
        return int(sp.Poly(self.expr, S.g, S.h, S.xi).total_degree())

    @cached_property
    def xi_degree(self) -> int:
        """Degree of the loss in the label noise ``xi``."""
        import sympy as sp

        from . import symbols as S

        return int(sp.degree(sp.expand(self.expr), S.xi))

    @classmethod
    def single_index(cls, link: "str | sp.Expr" = "he2", activation: "str | sp.Expr | None" = None,
                     loss: str = "square") -> "Model":
        r"""The single-index model of docs/theory.md §5: teacher :math:`y = \sigma^*(h) + \xi` (``link``), student
        :math:`\sigma(g)` (``activation``, default the link), ``loss`` ``"square"`` :math:`(\sigma(g) - y)^2` or
        ``"correlation"`` :math:`-y\,\sigma(g)`. Links by name (:data:`phasedyn.theory.LINKS`) or expressions in
        ``z``."""
        from . import symbols as S
        from ._links import parse_link as _link
        from ._links import z
        from .validate import check_choice

        check_choice("loss", loss, ("square", "correlation"))
        teacher = _link(link).xreplace({z: S.h})
        student = _link(link if activation is None else activation).xreplace({z: S.g})
        y = teacher + S.xi
        return cls.from_expr((student - y) ** 2 if loss == "square" else -y * student)

    @property
    def tag(self) -> str:
        """``""`` for phase retrieval, else ``"[loss=...]"`` (appended to system names)."""
        return "" if self.is_phase_retrieval else f"[loss={self.loss}]"

    def jax_loss(self) -> Callable:
        r"""``ell(g, h, xi)``: the loss as a JAX-traceable function of three arrays (sympy → jax.numpy)."""
        return _jax_loss(self.loss)

    def to_dict(self) -> dict[str, Any]:
        """JSON description (config.json, summary.json)."""
        return {"loss": self.loss, "phase_retrieval": self.is_phase_retrieval}

    def __repr__(self) -> str:
        return f"Model({self.loss!r})"


_JAX_LOSSES: dict[str, Callable] = {}


def jax_functions() -> dict[str, Callable]:
    """The JAX implementations of the sympy functions a loss and its derivatives contain (for ``lambdify``)."""
    import jax
    import jax.numpy as jnp

    return {"erf": jax.scipy.special.erf, "Max": jnp.maximum, "Min": jnp.minimum, "Abs": jnp.abs,
            "tanh": jnp.tanh, "exp": jnp.exp, "sign": jnp.sign,
            "Heaviside": lambda x, h0=0.5: jnp.where(x > 0, 1.0, jnp.where(x < 0, 0.0, h0))}


def _jax_loss(loss: str) -> Callable:
    if loss not in _JAX_LOSSES:
        import sympy as sp

        from . import symbols as S

        _JAX_LOSSES[loss] = sp.lambdify((S.g, S.h, S.xi), parse_loss(loss), modules=[jax_functions(), "jax"],
                                        docstring_limit=0)
    return _JAX_LOSSES[loss]
