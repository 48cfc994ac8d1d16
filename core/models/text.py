"""Screening text that people and LLMs write: what no person types is refused, with a message saying so."""

from __future__ import annotations

import unicodedata

MAX_TICKET_TEXT = 2000


def refuse_hidden_characters(text: str, what: str) -> str:
    """`text` unchanged, or a ValueError naming the first character no person types.

    Control characters (other than newline and tab), surrogates, private-use and unassigned
    code points, invisible format characters (bidi overrides, zero-width joiners), line and
    paragraph separators, and characters that show nothing (variation selectors, Hangul
    fillers, the blank braille pattern) that can make text read differently to a person than
    to a program.
    """
    hidden = hidden_character(text)
    if hidden:
        raise ValueError(f"{what} contains {hidden}")
    return text


def clean_ticket_text(value: str, limit: int = MAX_TICKET_TEXT) -> str:
    """Normalise ticket text and refuse what no person types.

    Control characters (other than newline and tab), invisible format
    characters used to hide instructions, and text that is blank once
    normalised are refused with a message saying so. The length is checked
    after normalising, which can lengthen text (U+FDFA is 18 characters).
    """
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        raise ValueError("ticket text is empty")
    refuse_hidden_characters(text, "ticket text")
    if len(text) > limit:
        raise ValueError(f"ticket text is longer than {limit} characters")
    return text


# Characters of letter, mark or symbol categories that show nothing: they can hide text or data
# (a variation selector per byte after an emoji) as well as any format character can.
_INVISIBLE = {
    0x034F: "an invisible combining grapheme joiner",
    0x115F: "an invisible Hangul filler",
    0x1160: "an invisible Hangul filler",
    0x3164: "an invisible Hangul filler",
    0xFFA0: "an invisible Hangul filler",
    0x2800: "a blank braille pattern",
    **{code: "an invisible variation selector" for code in (*range(0x180B, 0x1810), *range(0xFE00, 0xFE10))},
}
_SUPPLEMENTARY_SELECTORS = range(0xE0100, 0xE01F0)
# Emoji presentation (U+FE0F) or text presentation (U+FE0E), once, right after a symbol: what
# keyboards put in "❤️"; it carries nothing, unlike a run of selectors or one after a letter.
_PRESENTATION_SELECTORS = "\ufe0e\ufe0f"


def hidden_character(text: str) -> str | None:
    """What no person types in `text`, in words, or None: control, unassigned or invisible characters.

    Newline and tab are allowed. Used for ticket text and for every string a plan carries.
    """
    previous = ""
    for char in text:
        hidden = _hidden(char, previous)
        if hidden:
            return hidden
        previous = char
    return None


def escape_hidden(text: str) -> str:
    """`text` with each character no person types written as its escape (`\\u0000`), the rest unchanged.

    For text that is recorded whatever it holds (the audit log): a database refuses some of these
    characters (PostgreSQL any NUL, UTF-8 a lone surrogate), and a reader should see the others.
    """
    if hidden_character(text) is None:
        return text
    escaped: list[str] = []
    previous = ""
    for char in text:
        code = ord(char)
        if _hidden(char, previous) is None:
            escaped.append(char)
        else:
            escaped.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        previous = char
    return "".join(escaped)


def _hidden(char: str, previous: str) -> str | None:
    category = unicodedata.category(char)
    code = ord(char)
    if char in "\n\t":
        return None
    if category in ("Cc", "Cs", "Co", "Cn"):
        return f"a control or unassigned character (U+{code:04X})"
    if category == "Cf":
        return f"an invisible formatting character (U+{code:04X})"
    if category in ("Zl", "Zp"):
        return f"a line or paragraph separator (U+{code:04X})"
    if code in _SUPPLEMENTARY_SELECTORS:
        return f"an invisible variation selector (U+{code:04X})"
    if code in _INVISIBLE and not _presentation(previous, char):
        return f"{_INVISIBLE[code]} (U+{code:04X})"
    return None


def _presentation(previous: str, char: str) -> bool:
    return char in _PRESENTATION_SELECTORS and bool(previous) and unicodedata.category(previous) == "So"
