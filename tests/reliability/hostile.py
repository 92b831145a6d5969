"""The hostile prompts every reliability test reuses: what a careless or malicious user may type."""
from __future__ import annotations

# name -> prompt; each must be captured (or refused with a message), never crash, never render.
CAPTURED = {
    "one character": "a",
    "whitespace only": " \n\t ",
    "emoji": "👩‍👩‍👧 🇫🇷 😀",
    "combining marks": "e\u0301 Z\u0351\u0352\u0353",
    "right-to-left": "שלום مرحبا \u202eabc",
    "NUL and control characters": "a\x00b\x01\x7f\x1b[31m",
    "invalid surrogates": "x\ud800y\udfff",
    "zero-width and BOM": "\ufeff\u200b\u200d",
    "html and script": '<script>alert(1)</script><img src=x onerror="alert(2)"><b>b</b>&amp;',
    "markdown and latex": "**x** $x$ $$\\frac{a}{b}$$ # h [link](javascript:alert(3)) `code`",
}
SCRIPT = "<script>alert(1)</script>"
# Literal pieces that must show as characters (never rendered) wherever tokens are drawn.
LITERALS = ["<script>", "**", "$", "<b>", "&amp;"]
