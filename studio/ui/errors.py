"""No traceback ever reaches a person: bad input becomes its one-sentence message, anything else is logged.

Nor does a refusal fill the server's log: Gradio prints the traceback of every `gr.Error` it catches unless the error
says `print_exception=False`, so a public server logged some forty lines for each prompt over its cap. A refusal is
one line at INFO (`refusal`); an unexpected failure keeps its traceback, logged once by `friendly`.
"""

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


def refusal(message: str) -> gr.Error:
    """The error to raise for input a handler refuses: shown to the person, one line in the log, no traceback."""
    log.info("refused: %s", message)
    return gr.Error(message, print_exception=False)


def friendly(handler: Callable) -> Callable:
    """Wrap an event handler (plain or generator) so every failure is shown as a sentence."""

    def translate(error: Exception) -> gr.Error:
        if isinstance(error, gr.Error):  # the handler's own refusal (tabs raise gr.Error): quiet it too
            if error.print_exception:
                log.info("%s refused: %s", handler.__name__, error.message)
                error.print_exception = False
            return error
        if isinstance(error, EXPECTED) or write_failure(error):
            return refusal(expected_message(error))
        log.exception("handler %s failed", handler.__name__)
        return gr.Error(UNEXPECTED, print_exception=False)  # its traceback is in the log once, just above

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
