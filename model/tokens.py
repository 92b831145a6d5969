"""Readable token strings: each token's own text with whitespace made visible, and partial UTF-8
pieces shown as their bytes (`<0xF0>`) so that different tokens never all look like "�".
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

VISIBLE = {" ": "·", "\n": "↵", "\t": "⇥"}
_REPLACEMENT = "\ufffd"


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the byte-level BPE alphabet back to raw bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _raw_bytes(piece: str) -> bytes | None:
    """Bytes of a byte-level BPE piece (e.g. 'Ġcapital'), or None if it is not one."""
    table = _byte_decoder()
    if piece and all(ch in table for ch in piece):
        return bytes(table[ch] for ch in piece)
    return None


def _bytes_to_text(data: bytes) -> str:
    """Decode valid UTF-8 runs as text and show every undecodable byte as <0xNN>."""
    out: list[str] = []
    i = 0
    while i < len(data):
        for width in (4, 3, 2, 1):
            chunk = data[i : i + width]
            try:
                out.append(chunk.decode("utf-8"))
                i += len(chunk)
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(f"<0x{data[i]:02X}>")
            i += 1
    return "".join(out)


def make_visible(text: str) -> str:
    """Show spaces, newlines, tabs and other control characters as visible marks."""
    out = []
    for ch in text:
        if ch in VISIBLE:
            out.append(VISIBLE[ch])
        elif unicodedata.category(ch) in ("Cc", "Cs"):
            out.append(f"<0x{ord(ch):02X}>")
        else:
            out.append(ch)
    return "".join(out)


def token_text(tokenizer, token_id: int) -> str:
    """The raw text a single token stands for (bytes shown as <0xNN> when not valid UTF-8)."""
    text = tokenizer.decode([token_id], clean_up_tokenization_spaces=False)
    piece = tokenizer.convert_ids_to_tokens(token_id)
    if _REPLACEMENT in text and piece:
        raw = _raw_bytes(piece)
        return _bytes_to_text(raw) if raw is not None else piece
    if isinstance(piece, str) and piece.startswith("▁") and not text.startswith(" "):
        text = " " + text  # sentencepiece drops the leading space of a lone token
    return text


def readable_tokens(tokenizer, token_ids) -> list[str]:
    """One visible string per token id, in order."""
    return [make_visible(token_text(tokenizer, int(t))) for t in token_ids]


def clean_prompt(text: str) -> str:
    """Replace lone surrogates (from pasted text) with U+FFFD so the tokenizer accepts the string."""
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
