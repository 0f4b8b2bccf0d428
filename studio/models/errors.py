"""The one exception type model loading raises."""

from __future__ import annotations


class ModelLoadError(ValueError):
    """A model could not be found, recognised or loaded.

    The message is always one sentence that says what went wrong and what to do about it,
    so the CLI and the browser UI can show it as is, without a traceback.
    """
