"""Monte-Carlo sizes scale with the backend; timing helper."""

import jax.numpy as jnp
import pytest

from imagination import device, timing


def test_mc_size_cpu_and_gpu(monkeypatch):
    monkeypatch.setenv("IMAGINATION_FORCE_SCALE", "cpu")
    assert device.mc_size(1000, 64000) == 1000
    monkeypatch.setenv("IMAGINATION_FORCE_SCALE", "gpu")
    assert device.mc_size(1000, 64000) == 64000
    assert device.mc_size(10) == 640
    assert device.on_accelerator()


def test_mc_size_validation():
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="cpu"):
            device.mc_size(bad)
    with pytest.raises(ValueError, match="gpu"):
        device.mc_size(10, 0)


def test_describe_names_backend():
    assert device.backend() in device.describe()


def test_time_call():
    t = timing.time_call(lambda x: x @ x, jnp.ones((32, 32)), repeats=2)
    assert t.first_s >= 0 and t.best_s >= 0 and t.compile_s >= 0
    with pytest.raises(ValueError, match="repeats"):
        timing.time_call(lambda: 0, repeats=0)
