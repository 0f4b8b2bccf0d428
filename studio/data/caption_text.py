"""Caption text: decoding caption files, normalising, and the checks every caption gets.

A caption is one line of NFC-normalised text with single spaces, so what is written to a sidecar `.txt`,
to `metadata.jsonl` and to the manifest is byte-for-byte the same caption. Length is measured in the text
encoder's tokens (CLIP: 77 including start and end), counting a multi-vector textual-inversion token as
the number of vectors it expands to, because that is what the encoder will see.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from studio.data.issues import Issue

_WHITESPACE = re.compile(r"\s+")
DEFAULT_TOKEN_LIMIT = 77  # CLIP's context, as in every Stable Diffusion text encoder


def normalise_caption(text: str) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def decode_caption(raw: bytes, source: str) -> tuple[str | None, list[Issue]]:
    """Text of a caption file, or None with the reason when it cannot be used as it is."""
    try:
        text = raw.decode("utf-8-sig")  # "-sig": a byte-order mark some editors add is not part of the caption
    except UnicodeDecodeError as error:
        return None, [
            Issue(
                "caption-not-utf8",
                f"caption file {source} is not valid UTF-8 (byte 0x{raw[error.start]:02x} at position {error.start}); "
                "it was not used, re-save it as UTF-8",
            )
        ]
    return normalise_caption(text), []


class TokenCounter:
    """Counts a caption's tokens as the text encoder will see them."""

    def __init__(self, tokenizer, ti_tokens: Mapping[str, int] | None = None) -> None:
        self.tokenizer = tokenizer
        limit = int(getattr(tokenizer, "model_max_length", DEFAULT_TOKEN_LIMIT))
        # tokenizers without a limit report a huge sentinel; CLIP's 77 is then the right assumption
        self.limit = limit if 0 < limit < 100_000 else DEFAULT_TOKEN_LIMIT
        for token, vectors in (ti_tokens or {}).items():
            if not token.strip() or vectors < 1:
                raise ValueError(f"textual-inversion token {token!r} needs a name and at least 1 vector")
        # longest first, so "<cat-toy>" is not counted as an occurrence of a shorter "<cat>"
        self.ti_tokens = dict(sorted((ti_tokens or {}).items(), key=lambda kv: -len(kv[0])))

    @classmethod
    def from_folder(cls, folder: str | Path, ti_tokens: Mapping[str, int] | None = None) -> TokenCounter:
        """A CLIP tokenizer folder, or a diffusers model folder with a `tokenizer/` inside."""
        from transformers import CLIPTokenizer

        folder = Path(folder)
        if (folder / "tokenizer").is_dir():
            folder = folder / "tokenizer"
        if not any((folder / name).is_file() for name in ("tokenizer.json", "vocab.json")):
            raise FileNotFoundError(f"no CLIP tokenizer (tokenizer.json or vocab.json) in {folder}")
        return cls(CLIPTokenizer.from_pretrained(folder, local_files_only=True), ti_tokens)

    def count(self, caption: str) -> int:
        """Tokens including start and end, TI tokens expanded to their vector count."""
        expanded = 0
        for token, vectors in self.ti_tokens.items():
            occurrences = caption.count(token)
            if occurrences:
                expanded += occurrences * vectors
                caption = caption.replace(token, " ")
        # verbose=False: measuring a long caption is the point, not a reason for the tokenizer to warn
        return len(self.tokenizer(caption, truncation=False, verbose=False)["input_ids"]) + expanded


def caption_issues(caption: str, counter: TokenCounter | None = None) -> list[Issue]:
    """Warnings about one caption: empty, or longer than the text encoder reads."""
    if not caption:
        return [Issue("caption-empty", "the caption is empty; write or generate one before training")]
    if counter is not None:
        tokens = counter.count(caption)
        if tokens > counter.limit:
            return [
                Issue(
                    "caption-too-long",
                    f"{tokens} tokens, over the text encoder's {counter.limit}; the text after token {counter.limit} "
                    "is cut off and never trains",
                )
            ]
    return []


# a prompt (to generate, or a run's sample prompt) is a few words; 4 KB is far more than any text encoder reads
MAX_PROMPT_BYTES = 4096


def check_prompt_size(name: str, text: object, limit: int, where: str = "") -> None:
    """Refuse a prompt that is not text or is longer than `limit` bytes (UTF-8), before any tokenizer sees it.
    None is no prompt (an empty negative prompt from a form)."""
    if text is None:
        return
    if not isinstance(text, str):
        raise ValueError(f"{name} must be text, got {type(text).__name__}")
    size = len(text) if len(text) > limit else len(text.encode("utf-8"))  # a character is at least one byte
    if size > limit:
        raise ValueError(
            f"{name} is too long: {size} bytes, the limit{where} is {limit} bytes "
            "(the model reads only its first 77 tokens, about 300 characters)"
        )
