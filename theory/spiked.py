r"""(C) Spiked covariance, :math:`\Sigma = I + \theta vv^\top`: the three-variable systems (docs/theory.md §3C).

Set-up: :math:`|v| = |w^*| = 1`, :math:`v \perp w^*`, so :math:`\Sigma w^* = w^*`, :math:`\Sigma v = (1+\theta)v`
and :math:`\Sigma = 1` on the bulk :math:`P_\perp = I - w^*w^{*\top} - vv^\top` (rank :math:`d - 2`).
Here :math:`a, b, c` are the spiked system's coefficients (signal, spike, bulk; [P2]'s :math:`a_k, b_k, c_k`),
not the power-law exponent of §3B. One namespace over private modules, one job each:

* **one neuron** (:func:`neuron_system`; ``_spiked_neuron``): :math:`a = w\cdot w^*`, :math:`b = w\cdot v`,
  :math:`c = |P_\perp w|`, derived by :mod:`.derive` from the signal, spike and bulk block families
  (:data:`SIGNAL`, :data:`SPIKE`, :data:`BULK`) and the square-root change of variables
  (:func:`sqrt_flow`, :func:`sqrt_map`). Gradient flow:

  .. math:: \dot a = 12(1 - s)a,\quad \dot b = 4(1+\theta)(1 - 3s)b,\quad \dot c = 4(1 - 3s)c,

  with :math:`u = a` and :math:`s = a^2 + (1+\theta)b^2 + c^2` as observables;
* **two layers** (:func:`two_layer_system`; ``_spiked_two_layer``): :math:`f_W(x) = |Wx|^2/m` on the invariant
  manifold :math:`W = Q(aP_{w^*} + bP_v + cP_\perp)`, GD / SpecGD / their flows from the restricted trace form
  (:func:`trace_form_loss`, :func:`block_gradient`), and SpecGD with Muon's Newton–Schulz quintic (``"muon"``:
  :func:`quintic_step`, :func:`muon_polynomial`, :func:`muon_block_polar`); the common statistics ``u``, ``s``, ``mse`` of
  :math:`M = W^\top W/m` (:func:`matrix_statistics`) as observables;
* **parameters** (``_spiked_params``): :func:`check_theta`, :func:`check_geometry`, :func:`spiked_params`,
  :func:`identity_start`, :func:`observe` (observables at given states);
* **predictions** (``_spiked_analysis``): :func:`fixed_points`, :func:`growth_rates`, the threshold
  :math:`\theta = 2` (:func:`threshold`), :func:`start_threshold`, :func:`peak_ratio_exponent`;
* **the verbs every system shares** (``_spiked_verbs``; docs/theory.md §6): :func:`system`, :func:`params`,
  :func:`state`, :func:`solve`, :func:`predictions`, for ``network="neuron"`` or ``"two_layer"``;
* **every step inspected** (``_spiked_scan``): :func:`track` (peak :math:`|b|/|a|`, its step, the steps to bring
  :math:`b, c` below a tolerance, divergence), :func:`default_steps`, :func:`scan_amplification`,
  :func:`boundary_bisect`, :func:`boundary`.
"""

from __future__ import annotations

from ._spiked_analysis import fixed_points, growth_rates, peak_ratio_exponent, start_threshold, threshold
from ._spiked_neuron import (
    BULK, LATEX_NAMES, SIGNAL, SPIKE, NeuronOptimizer, a, b, c, d, eta, latex, m, neuron_fields, neuron_system, q_b,
    q_c, sqrt_flow, sqrt_map, theta,
)
from ._spiked_params import check_geometry, check_theta, identity_start, observe, spiked_params
from ._spiked_scan import (
    MISALIGNED_LEVEL, SCAN_OPTIMIZERS, Tracked, boundary, boundary_bisect, default_steps, scan_amplification, track,
)
from ._spiked_two_layer import (
    MUON_COEFFS, MUON_EPS, MUON_STEPS, RANKS, SIGMA_BLOCKS, TWO_LAYER_OPTIMIZERS, TwoLayerOptimizer, block_gradient,
    matrix_statistics, muon_block_polar, muon_polynomial, quintic_step, trace_form_loss, two_layer_system,
)
from ._spiked_verbs import NETWORKS, params, predictions, solve, state, system
from ._watch import PEAK_RTOL

__all__ = [
    "BULK", "LATEX_NAMES", "MISALIGNED_LEVEL", "MUON_COEFFS", "MUON_EPS", "MUON_STEPS", "NETWORKS", "PEAK_RTOL", "RANKS",
    "SCAN_OPTIMIZERS", "SIGMA_BLOCKS", "SIGNAL", "SPIKE", "TWO_LAYER_OPTIMIZERS", "muon_block_polar", "muon_polynomial",
    "quintic_step", "a", "b", "block_gradient", "boundary", "boundary_bisect", "c", "check_geometry",
    "check_theta", "d", "default_steps", "eta", "fixed_points", "growth_rates", "identity_start", "latex", "m",
    "matrix_statistics", "neuron_fields", "neuron_system", "NeuronOptimizer", "observe", "params",
    "peak_ratio_exponent", "predictions", "q_b", "q_c", "scan_amplification", "solve", "spiked_params", "sqrt_flow",
    "sqrt_map", "start_threshold", "state", "system", "theta", "threshold", "trace_form_loss", "track", "Tracked",
    "two_layer_system", "TwoLayerOptimizer",
]
