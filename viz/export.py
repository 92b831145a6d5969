"""File names for downloads: named after the prompt and the view, safe on every file system."""
from __future__ import annotations

import re


def file_name(prompt: str, view: str, ext: str, max_len: int = 40) -> str:
    """e.g. ('The capital of France is', 'attention_L5H3', 'csv') -> 'attention_L5H3_the-capital-of-france-is.csv'."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:max_len].strip("-") or "prompt"
    view = re.sub(r"[^A-Za-z0-9_-]+", "-", view).strip("-") or "view"
    return f"{view}_{slug}.{ext.lstrip('.')}"
