"""The operator spreads models over devices (XRAY_DEVICE_MAP, XRAY_MAX_MEMORY, XRAY_OFFLOAD_DIR) and
the sidebar says where the blocks live."""
from __future__ import annotations

from apptest_session import open_app_page
from tiny_models import tiny_model

from model.core.settings import parse_max_memory, settings
from viz.model_text import placement


def test_max_memory_setting():
    assert parse_max_memory("0=20GiB, 1=20GiB,cpu=64GiB") == {0: "20GiB", 1: "20GiB", "cpu": "64GiB"}
    assert parse_max_memory("cpu=1000") == {"cpu": 1000}
    assert parse_max_memory("") is None and parse_max_memory("cpu") is None


def test_placement_sentence():
    devices = ("cuda:0",) * 12 + ("cpu",) * 12 + ("disk",) * 6
    assert placement(devices) == "Blocks 0–11 on cuda:0, 12–23 on cpu, 24–29 on disk"
    assert placement(("cpu",)) == "Block 0 on cpu"


def test_sidebar_says_where_blocks_live(tmp_path, tokenizer, monkeypatch):
    from pages.kit import models

    folder = tmp_path / "spread-llama"
    tiny_model("llama", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    matrix = len(tokenizer) * 32 * 4  # as in tests/model/engine/test_offload.py: block 0 fits in memory, 1 and 2 do not
    monkeypatch.setenv("XRAY_DEVICE_MAP", "auto")
    monkeypatch.setenv("XRAY_MAX_MEMORY", f"cpu={2 * matrix + 50_000}")
    monkeypatch.setenv("XRAY_OFFLOAD_DIR", str(tmp_path / "offload"))
    settings.cache_clear()  # read once per process: read this test's settings
    try:
        at = open_app_page(state={"model_choice": models.OTHER_MODEL, "model_custom": str(folder)})
        assert not at.exception
        captions = [c.value for c in at.sidebar.caption]
        assert "Blocks 0 on cpu, 1–2 on disk" in captions, captions
        assert any(c.startswith("Ran on **cpu**") for c in captions)
    finally:
        settings.cache_clear()
