"""Numerical defaults: float64 is switched on when phasedyn is imported (``jax_enable_x64``).

Set the environment variable ``PHASEDYN_X64=0`` before import to keep JAX's float32 default.
"""

from __future__ import annotations

import os

import jax

if os.environ.get("PHASEDYN_X64", "1") != "0":
    jax.config.update("jax_enable_x64", True)
