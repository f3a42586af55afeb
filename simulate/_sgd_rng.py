r"""``jax.random.normal`` for threefry keys, bit for bit, with the Threefry-2x32 hash unrolled (issue 16, item 2).

Online SGD draws :math:`d` Gaussians per seed and step, and on a CPU that generation bounds its speed. JAX
lowers the Threefry hash on CPU as a *rolled* XLA while loop of five iterations (the unrolled form is its
lowering on other platforms), so the (seeds, d) ``uint32`` state goes through memory at every iteration and
nothing fuses with the hash. :func:`normal` is the same computation written out in ``jax.numpy``: JAX's
``threefry_random_bits`` in its partitionable form (counts ``(0, iota)``, the 20 rounds and key injections of
Threefry-2x32; ``jax_threefry_partitionable``, JAX's default), the mantissa trick of ``jax.random.uniform`` on
:math:`[\mathrm{nextafter}(-1, 0), 1)` and :math:`\sqrt2\,\mathrm{erf}^{-1}`, as in ``jax.random.normal``: the
same bits (tests/test_speed_paths.py checks them against ``jax.random.normal``, float32 and float64), so the
streams, the recorded ``config["prng"]`` and every saved run stay as they were; only the lowering differs. Any
other generator, a raw ``uint32`` key or the non-partitionable threefry goes to ``jax.random.normal`` itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash of the counts ``(x1, x2)`` under the key ``(k1, k2)`` (all ``uint32``), unrolled:
    five groups of four rounds, a key injection after each (JAX's ``_threefry2x32_lowering``)."""
    u32 = jnp.uint32
    ks = (k1, k2, k1 ^ k2 ^ u32(_PARITY))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = (x2 << u32(r)) | (x2 >> u32(32 - r))
            x2 = x1 ^ x2
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + u32(i + 1)
    return x1, x2


def _is_threefry(key) -> bool:
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return False  # a raw uint32 key: leave it to jax.random
    return "threefry2x32" in str(jax.random.key_impl(key)) and bool(jax.config.jax_threefry_partitionable)


def normal(key, shape: tuple[int, ...], dtype) -> jax.Array:
    """``jax.random.normal(key, shape, dtype)``, the same bits; unrolled hash for a threefry key (module doc)."""
    dtype = jnp.dtype(dtype)
    n = int(np.prod(shape))
    if not _is_threefry(key) or dtype not in (jnp.float32, jnp.float64) or n >= 2**32 or key.shape != ():
        return jax.random.normal(key, shape, dtype)
    k1, k2 = jax.random.key_data(key)
    counts = jax.lax.iota(jnp.uint32, n).reshape(shape)
    b1, b2 = threefry2x32(k1, k2, jnp.zeros_like(counts), counts)
    if dtype == jnp.float64:
        u64 = jnp.uint64
        bits = (b1.astype(u64) << u64(32)) | b2.astype(u64)
        float_bits = (bits >> u64(64 - 52)) | u64(np.array(1.0, np.float64).view(np.uint64))
    else:
        float_bits = ((b1 ^ b2) >> jnp.uint32(32 - 23)) | jnp.uint32(np.array(1.0, np.float32).view(np.uint32))
    floats = jax.lax.bitcast_convert_type(float_bits, dtype) - jnp.array(1.0, dtype)
    lo = jnp.asarray(np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype), dtype)
    hi = jnp.asarray(np.array(1.0, dtype), dtype)
    u = jax.lax.max(lo, floats * (hi - lo) + lo)
    return jax.lax.mul(jnp.asarray(np.sqrt(2), dtype), jax.lax.erf_inv(u))
