r"""Sharding a batch (seeds, parameter sweeps) across devices with :mod:`jax.sharding`.

One job: lay the leading *batch* axis of the inputs of a vmapped, jitted function over a 1-D
device mesh (axis name :data:`AXIS`), padding the batch up to a multiple of the mesh size, and cut
the padding off the results. ``jax.jit`` propagates the input shardings through the computation, so
each device runs its slice of the batch; there is no process pool.

Padding repeats the *last* batch member, so padded rows are genuine copies (same step counts, no
spurious divergence) and are simply dropped afterwards. Each batch member's computation is the same
whatever its neighbours, so a sharded result equals the single-device one.

``devices`` arguments (:data:`Devices`) accept ``None`` or ``"all"`` (every device of
``jax.devices()``), one :class:`jax.Device`, or a sequence of them. A batch of ``n`` uses at most
``n`` devices (the first ``n`` of the list), so small batches are not padded out to many devices.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Sequence, Union

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"
"""Name of the mesh axis that carries the batch."""

Devices = Union[None, Literal["all"], jax.Device, Sequence[jax.Device]]
"""What a ``devices=`` argument accepts: ``None``/``"all"``, one device, or a sequence of devices."""


def resolve_devices(devices: Devices = None) -> tuple[jax.Device, ...]:
    """The devices named by a ``devices`` argument, as a non-empty tuple without repeats.

    Raises:
        ValueError: an empty sequence, a repeated device, or something that is not a device.
    """
    if devices is None or (isinstance(devices, str) and devices == "all"):
        return tuple(jax.devices())
    if isinstance(devices, jax.Device):
        return (devices,)
    if isinstance(devices, (str, bytes)) or not isinstance(devices, (Sequence, np.ndarray)):
        raise ValueError(f"devices must be None, 'all', a jax.Device or a sequence of them, got {devices!r}")
    out = tuple(np.ravel(np.asarray(devices, dtype=object))) if isinstance(devices, np.ndarray) else tuple(devices)
    if not out:
        raise ValueError("devices must be None, 'all', a jax.Device or a non-empty sequence of them, got []")
    bad = [d for d in out if not isinstance(d, jax.Device)]
    if bad:
        raise ValueError(f"devices must hold jax.Device objects (e.g. from jax.devices()), got {bad[0]!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"devices must not repeat a device, got {list(out)}")
    return out


@dataclasses.dataclass(frozen=True)
class BatchSharding:
    """A batch of ``n`` members laid over a 1-D mesh, padded to ``padded`` (a multiple of the mesh size).

    Build it with :meth:`make`; :meth:`shard` puts batched inputs on the mesh, :meth:`replicate`
    puts shared inputs on every device, :meth:`unpad` cuts results back to ``n``.
    """

    mesh: Mesh
    n: int
    padded: int

    @classmethod
    def make(cls, n: int, devices: Devices = None) -> "BatchSharding":
        """Shard a batch of ``n >= 1`` over (at most ``n`` of) ``devices``."""
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"batch size must be an integer >= 1, got {n!r}")
        devs = resolve_devices(devices)[: int(n)]
        mesh = Mesh(np.array(devs, dtype=object), (AXIS,))
        return cls(mesh=mesh, n=int(n), padded=-(-int(n) // len(devs)) * len(devs))

    @property
    def n_devices(self) -> int:
        """Number of devices in the mesh."""
        return self.mesh.devices.size

    @property
    def batched(self) -> NamedSharding:
        """Sharding of an array whose leading axis is the batch."""
        return NamedSharding(self.mesh, PartitionSpec(AXIS))

    @property
    def replicated(self) -> NamedSharding:
        """Sharding of an array every device holds whole."""
        return NamedSharding(self.mesh, PartitionSpec())

    def pad(self, x: np.ndarray | jax.Array) -> np.ndarray | jax.Array:
        """``x`` (leading axis ``n``) padded to ``padded`` rows by repeating its last row."""
        if x.shape[0] != self.n:
            raise ValueError(f"leading (batch) axis must have length {self.n}, got shape {x.shape}")
        extra = self.padded - self.n
        if extra == 0:
            return x
        xp = np if isinstance(x, np.ndarray) else jax.numpy
        return xp.concatenate([x, xp.repeat(x[-1:], extra, axis=0)], axis=0)

    def shard(self, x: np.ndarray | jax.Array) -> jax.Array:
        """Pad ``x`` along its leading (batch) axis and lay that axis over the mesh."""
        return jax.device_put(self.pad(x), self.batched)

    def replicate(self, x: np.ndarray | jax.Array) -> jax.Array:
        """Put ``x`` whole on every device of the mesh."""
        return jax.device_put(x, self.replicated)

    def unpad(self, x: np.ndarray | jax.Array, axis: int = 0) -> np.ndarray | jax.Array:
        """The first ``n`` entries of ``x`` along its batch ``axis`` (drops the padding)."""
        if self.padded == self.n:
            return x
        return x[(slice(None),) * (axis % x.ndim) + (slice(0, self.n),)]
