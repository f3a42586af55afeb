"""Test configuration: float64 and strict dtype promotion on, as in diffrax/equinox's own suites."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

import phasedyn.theory  # noqa: E402,F401
