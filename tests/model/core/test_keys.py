"""Cache keys name a model by name, device and dtype, and keep their parts apart."""
from __future__ import annotations

from types import SimpleNamespace

from model.core.keys import cache_key, model_key


def test_model_key_tells_devices_and_dtypes_apart():
    cpu = SimpleNamespace(name="m", device="cpu", dtype_name="float32")
    gpu = SimpleNamespace(name="m", device="cuda:0", dtype_name="float32")
    half = SimpleNamespace(name="m", device="cpu", dtype_name="bfloat16")
    assert len({model_key(cpu), model_key(gpu), model_key(half)}) == 3


def test_parts_stay_apart():
    assert cache_key("a", 1, "b c") != cache_key("a1", "b c") != cache_key("a", "1b", "c")
