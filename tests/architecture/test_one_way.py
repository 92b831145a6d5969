"""One way each: the operator's settings are read in one place (model/core/settings.py), cache keys are
joined by one helper (model/core/keys.py), and every page starts with kit.page. Checked on the source."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "model" / "core" / "settings.py"


def _sources(*tops: str) -> list[Path]:
    return [p for top in tops for p in ([ROOT / top] if top.endswith(".py") else (ROOT / top).rglob("*.py"))]


def test_settings_are_read_only_in_settings_py():
    readers = re.compile(r"load_settings\(|os\.environ(\.get)?\W+[\"']XRAY_|getenv\([\"']XRAY_|st\.secrets")
    found = [str(p.relative_to(ROOT)) for p in _sources("model", "pages", "viz", "app.py")
             if p != SETTINGS and readers.search(p.read_text())]
    assert not found, f"read settings through model.core.settings.settings(): {found}"


def test_keys_are_joined_only_by_the_helper():
    keys = ROOT / "model" / "core" / "keys.py"
    found = [str(p.relative_to(ROOT)) for p in _sources("model", "pages", "viz", "app.py")
             if p != keys and ("\\x1f" in p.read_text() or "\x1f" in p.read_text())]
    assert not found, f"join cache keys with model.core.keys.cache_key: {found}"


def test_every_page_starts_with_kit_page():
    """Each page's title, model and capture come from kit.page: no page draws its own title or asks for
    the model on its own."""
    pages = sorted(p for p in (ROOT / "pages").glob("*.py") if p.name != "__init__.py")
    assert len(pages) == 17
    for path in pages:
        text = path.read_text()
        assert text.count("kit.page(") == 1, path.name
        assert not re.search(r"\.title\(|kit\.current_model\(", text), path.name
