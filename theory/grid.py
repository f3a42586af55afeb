r"""The log-spaced grid of steps :math:`k` (time :math:`t = \eta k`) on which maps and runs are recorded.

One job, one grid: the exact GD map (:func:`phasedyn.theory.iterate`) and the simulations
(:func:`phasedyn.simulate.run`, :func:`phasedyn.simulate.run_matrix`) record on the same steps, so a
theory curve and a simulated one meet at equal :math:`t` without interpolation (docs/theory.md §4,
"Time units"). This module imports only numpy (``import phasedyn.simulate`` loads neither sympy nor
diffrax through it).
"""

from __future__ import annotations

import numpy as np

from .validate import check_int


def step_grid(steps: int, n: int = 200) -> np.ndarray:
    r"""Log-spaced integer step grid: :math:`\{0, 1, \text{steps}\} \cup \mathrm{round}(\mathrm{geomspace}(1,
    \text{steps}, n - 1))`.

    Returns a sorted, duplicate-free ``int64`` array that always contains 0, 1 and ``steps`` (at most
    ``max(n, 3)`` entries; fewer where rounding merges small steps). ``steps`` :math:`\ge 1`, ``n``
    :math:`\ge 2`.
    """
    steps = check_int("steps", steps, 1)
    n = check_int("n", n, 2)
    return np.unique(np.concatenate([[0, 1, steps], np.round(np.geomspace(1, steps, n - 1))]).astype(np.int64))
