"""No traceback ever reaches a person: bad input becomes its one-sentence message, anything else is logged."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable

import gradio as gr

from studio.data.files import write_failure

log = logging.getLogger("studio.ui")

EXPECTED = (ValueError, FileNotFoundError, KeyError)
UNEXPECTED = "Something went wrong on the server; the details are in its log. Try again, or report it with the log."


def expected_message(error: Exception) -> str:
    """The sentence of an expected failure: bad input, or a write a full or read-only disk refused."""
    failure = write_failure(error)
    if failure is not None:
        return str(failure)
    return str(error.args[0] if isinstance(error, KeyError) and error.args else error)


def friendly(handler: Callable) -> Callable:
    """Wrap an event handler (plain or generator) so every failure is shown as a sentence."""

    def translate(error: Exception) -> gr.Error:
        if isinstance(error, gr.Error):
            return error
        if isinstance(error, EXPECTED) or write_failure(error):
            return gr.Error(expected_message(error))
        log.exception("handler %s failed", handler.__name__)
        return gr.Error(UNEXPECTED)

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def generator(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except Exception as error:
                raise translate(error) from None

        return generator

    @functools.wraps(handler)
    def plain(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            raise translate(error) from None

    return plain


def as_message(handler: Callable[..., str]) -> Callable[..., str]:
    """Wrap a handler whose one output is a message box: a refusal becomes the message ("⚠ ..."), not an error.

    A raised `gr.Error` marks every output of the event with Gradio's red "Error" badge, which stays beside the
    message until the next event; a refusal the person can act on (a second Start while a run trains) is an answer,
    not a failure. Unexpected failures are logged and answered with one sentence, as in `friendly`.
    """

    @functools.wraps(handler)
    def plain(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error as error:
            return f"⚠ {error.message}"
        except Exception as error:
            if isinstance(error, EXPECTED) or write_failure(error):
                return f"⚠ {expected_message(error)}"
            log.exception("handler %s failed", handler.__name__)
            return f"⚠ {UNEXPECTED}"

    return plain
