"""Same seed, same bits: short runs of ``run`` and ``run_matrix`` against their final weights as saved.

tests/data/simulate_bits.json holds the final weights (as ``float.hex``, so exactly) of the runs in
:data:`CASES`, computed with the drivers *before* they were merged into one (simulate/run.py and
simulate/matrix.py each with its own chunk loop, commit 8ab4125). A refactoring of the driver, the
kernels or the record grid must reproduce them bit for bit; a deliberate change of the numerics must
regenerate them (``python tests/test_simulate_bits.py --write``, which imports the checkout, not an
installed copy) and say why in its commit. The values are the CPU backend's; elsewhere the test is skipped.

The cases cover each update rule (GD, online SGD under two generators, mini-batch SGD, SpecGD by SVD
and by Newton-Schulz with and without the SVD fallback), float32, a non-default loss, several chunks
(``chunk_size`` smaller than the number of record intervals) and explicit record steps.
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import numpy as np
import pytest

DATA = pathlib.Path(__file__).resolve().parent / "data" / "simulate_bits.json"

CASES: dict[str, dict] = {
    "run/gd": dict(kind="vector", optimizer="gd", eta=0.05, steps=60),
    "run/sgd-threefry": dict(kind="vector", optimizer="sgd", eta=0.02, steps=80, prng="threefry2x32"),
    "run/sgd-philox": dict(kind="vector", optimizer="sgd", eta=0.02, steps=80, prng="philox4x32"),
    "run/sgd-float32": dict(kind="vector", optimizer="sgd", eta=0.02, steps=80, dtype="float32"),
    "run/sgd-loss": dict(kind="vector", optimizer="sgd", eta=0.01, steps=50, model="(g**2 - h**2)**2 * (1 + h**2)"),
    "run/sgd-record": dict(kind="vector", optimizer="sgd", eta=0.02, steps=70, record_steps=[0, 3, 10, 41]),
    "matrix/gd": dict(kind="matrix", optimizer="gd", eta=0.05, steps=40),
    "matrix/sgd": dict(kind="matrix", optimizer="sgd", eta=0.02, steps=40, batch=3),
    "matrix/specgd-svd": dict(kind="matrix", optimizer="specgd", eta=0.01, steps=30),
    "matrix/specgd-ns": dict(kind="matrix", optimizer="specgd", eta=0.01, steps=30, polar="newton-schulz",
                             ns_fallback=True),
    "matrix/specgd-ns-strict": dict(kind="matrix", optimizer="specgd", eta=0.01, steps=30, polar="newton-schulz",
                                    ns_tol=1e-8),
}


def _run(case: dict) -> dict[str, np.ndarray]:
    """The case's run; returns its final weights and the per-seed outputs besides the statistics."""
    import jax.numpy as jnp

    import phasedyn.theory as th
    from phasedyn.simulate import run, run_matrix

    kw = {k: v for k, v in case.items() if k != "kind"}
    kw["dtype"] = jnp.dtype(kw.get("dtype", "float64"))
    if case["kind"] == "vector":
        problem = th.powerlaw_problem(10, 1.5, sigma=0.2)
        traj = run(problem, seeds=3, n_record=9, chunk_size=3, progress=False, **kw)
        return {"w_final": traj.w_final, "u": traj.stats["u"], "loss": traj.stats["loss"]}
    problem = th.spiked_problem(8, 4.0, sigma=0.1)
    traj = run_matrix(problem, m=5, init="gaussian", init_scale=0.3, seeds=2, n_record=7, chunk_size=2,
                      progress=False, **kw)
    return {"W_final": traj.W_final, "a": traj.stats["a"], "off": traj.stats["off"],
            "peak_ratio": traj.peak_ratio, "peak_step": traj.peak_step, "steps_to_tol": traj.steps_to_tol,
            "polar_residual": traj.polar_residual}


def _encode(a: np.ndarray) -> dict:
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer):
        return {"dtype": a.dtype.name, "shape": list(a.shape), "values": a.ravel().tolist()}
    return {"dtype": a.dtype.name, "shape": list(a.shape), "values": [float(x).hex() for x in a.ravel()]}


def _decode(e: dict) -> np.ndarray:
    if e["dtype"].startswith("int"):
        return np.asarray(e["values"], dtype=e["dtype"]).reshape(e["shape"])
    return np.asarray([float.fromhex(x) for x in e["values"]], dtype=e["dtype"]).reshape(e["shape"])


@pytest.mark.skipif(jax.default_backend() != "cpu",
                    reason="the saved bits are the CPU backend's (XLA's GPU kernels round differently)")
@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_bits(name):
    saved = json.loads(DATA.read_text())[name]
    got = _run(CASES[name])
    assert set(got) == set(saved)
    for key, want in saved.items():
        want = _decode(want)
        assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
        np.testing.assert_array_equal(got[key], want, err_msg=f"{name}: {key}")


if __name__ == "__main__":
    # the checkout's phasedyn, not an installed copy (a script's sys.path[0] is tests/, not the root)
    sys.path.insert(0, str(DATA.parents[2]))
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_simulate_bits.py --write  (regenerates tests/data/simulate_bits.json)")
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    out = {name: {k: _encode(v) for k, v in _run(case).items()} for name, case in sorted(CASES.items())}
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {DATA} ({len(out)} cases)")
