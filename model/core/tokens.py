"""Readable token strings: each token's own text with whitespace made visible, and partial UTF-8
pieces shown as their bytes (`<0xF0>`) so that different tokens never all look like "�". In a
prompt, a character whose bytes are split over neighbouring tokens is shown across them (token_views).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
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


_UNSEEN = ("Cf", "Mn", "Me")  # format characters and marks: nothing of their own on screen (U+FE0F, U+200D)


def make_visible(text: str) -> str:
    """Show spaces, newlines, tabs and other control characters as visible marks; a token made only of
    characters that draw nothing alone (a variation selector, a joiner) as their code points."""
    if text and all(unicodedata.category(ch) in _UNSEEN for ch in text):
        return "".join(f"<U+{ord(ch):04X}>" for ch in text)
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


_BYTE = re.compile(r"<0x([0-9A-F]{2})>")
SPLIT_MARK = "…"  # "我…" starts 我, "…我" ends it, "…喜…" is a middle piece


@dataclass(frozen=True)
class TokenView:
    """One prompt token as a reader sees it, with characters rebuilt across byte tokens."""

    label: str  # e.g. "我…": the character this token starts (or "…我" it ends)
    raw: str  # the token alone, undecodable bytes as <0xNN> (the byte view)
    start: int  # first position of the run of tokens that spell whole characters together
    end: int  # one past the last position of that run (start + 1 for a token that stands alone)
    spelled: str  # the run's text, e.g. "我" for the two tokens <0xE6><0x88>, <0x91>


def _pieces(token: str) -> list[str | int]:
    """A readable token as text characters and raw bytes (ints), in order."""
    out: list[str | int] = []
    at = 0
    for m in _BYTE.finditer(token):
        out += list(token[at : m.start()]) + [int(m.group(1), 16)]
        at = m.end()
    return out + list(token[at:])


def _utf8_length(lead: int) -> int:
    """Bytes in the UTF-8 sequence this lead byte starts (0: not a lead byte)."""
    return 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 0


def token_views(tokens: list[str]) -> list[TokenView]:
    """Readable tokens (from readable_tokens, in prompt order) with every character whose UTF-8 bytes
    are split over neighbouring tokens shown in each of them: ["<0xE6><0x88>", "<0x91>"] -> "我…", "…我"."""
    stream = [(pos, item) for pos, tok in enumerate(tokens) for item in _pieces(tok)]
    labels = [""] * len(tokens)
    bridges = list(range(len(tokens)))  # bridges[p]: the first position of p's run
    i = 0
    while i < len(stream):
        pos, item = stream[i]
        n = _utf8_length(item) if isinstance(item, int) else 0
        chunk = stream[i : i + n]
        data = [b for _, b in chunk if isinstance(b, int)]
        if n and len(chunk) == n and len(data) == n:
            try:
                ch = make_visible(bytes(data).decode("utf-8"))
            except UnicodeDecodeError:
                ch = ""
            if ch:
                owners = sorted({p for p, _ in chunk})
                for k, p in enumerate(owners):
                    labels[p] += ch if len(owners) == 1 else (SPLIT_MARK * (k > 0) + ch + SPLIT_MARK * (k < len(owners) - 1))
                    bridges[p] = bridges[owners[0]]
                i += n
                continue
        labels[pos] += item if isinstance(item, str) else f"<0x{item:02X}>"
        i += 1
    return _with_runs(tokens, labels, bridges)


def _with_runs(tokens: list[str], labels: list[str], bridges: list[int]) -> list[TokenView]:
    """Attach to each token the run of positions it shares split characters with."""
    ends: dict[int, int] = {}
    for p, b in enumerate(bridges):
        ends[b] = p + 1
    views = []
    for p, tok in enumerate(tokens):
        start, end = bridges[p], ends[bridges[p]]
        spelled = "".join(tokens[start:end]) if end - start == 1 else _spell(tokens[start:end])
        views.append(TokenView(labels[p], tok, start, end, spelled))
    return views


def _spell(run: list[str]) -> str:
    """The text of a run of tokens, its bytes decoded together."""
    pieces = [item for tok in run for item in _pieces(tok)]
    out, buf = [], bytearray()
    for item in pieces + [""]:
        if isinstance(item, int):
            buf.append(item)
            continue
        if buf:
            out.append(make_visible(_bytes_to_text(bytes(buf))))
            buf.clear()
        out.append(item)
    return "".join(out)


def character_labels(tokens: list[str]) -> list[str]:
    """One label per prompt token, split characters rebuilt (see token_views)."""
    return [v.label for v in token_views(tokens)]
