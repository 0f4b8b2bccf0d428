"""Safe, readable file names for whatever a user uploads.

Names from uploads can hold anything: accents, emoji, path separators, control characters, names Windows
refuses (CON, NUL, ...). A stored name keeps a readable ASCII slug of the original, so people still
recognise their files, and never collides with another stored name, even on case-insensitive file systems.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOT_RUN = re.compile(r"[-_.]*\.[-_.]*")  # "Paris!!.png" -> "Paris-.png" -> "Paris.png"
_DASH_RUN = re.compile(r"([-_])[-_]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
MAX_STEM_LENGTH = 80


def slugify(name: str, fallback: str = "image") -> str:
    """An ASCII slug of `name` ("Café – été.png" -> "Cafe-ete.png"); never empty, never hidden, never reserved."""
    # NFKD splits "é" into "e" + a combining accent, which the ASCII encode then drops
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _DASH_RUN.sub(r"\1", _DOT_RUN.sub(".", _UNSAFE.sub("-", ascii_text))).strip("-_.")
    if not slug:
        # nothing readable survived (e.g. "猫"): a short hash keeps different originals apart
        slug = f"{fallback}-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"
    if slug.split(".")[0].upper() in _WINDOWS_RESERVED:
        slug = f"_{slug}"
    return slug[:MAX_STEM_LENGTH].rstrip("-_.")


def unique_name(stem: str, suffix: str, taken: set[str]) -> str:
    """`stem + suffix`, or `stem-2 + suffix`, ... whichever is free; records the choice in `taken` (lower case)."""
    candidate, number = f"{stem}{suffix}", 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem}-{number}{suffix}"
    taken.add(candidate.lower())
    return candidate
