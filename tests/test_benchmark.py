"""The benchmark's contenders compute the same rollout; its figures are consistent (not timed)."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from imagination import benchmark

ROOT = Path(__file__).resolve().parents[1]


def test_contenders_compute_the_same_returns():
    params = benchmark.make_params(jax.random.key(0))
    s0 = jax.random.normal(jax.random.key(1), (6, benchmark.STATE))
    jax_ret = np.asarray(benchmark.jax_runner(params, s0, 7)())
    np_ret = benchmark.numpy_runner(params, s0, 7)()
    py_ret = np.asarray(benchmark.python_runner(params, s0, 7)())
    np.testing.assert_allclose(np_ret, jax_ret, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(py_ret, jax_ret, rtol=1e-4, atol=1e-5)


def test_measure_reports_consistent_ratios():
    r = benchmark.measure(64, 3, repeats=1, python_subset=2)
    assert r["speedup_vs_numpy"] == pytest.approx(
        r["jax_steps_per_s"] / r["numpy_steps_per_s"]
    )
    assert r["jax_flops_per_s"] == pytest.approx(
        benchmark.flops_per_step(64) * 3 / r["jax_run_s"]
    )
    with pytest.raises(ValueError, match="batch"):
        benchmark.measure(0, 3)


def test_cli_rejects_bad_sizes():
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "rollout_speed.py"),
            "--batch",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "must be positive" in res.stderr
