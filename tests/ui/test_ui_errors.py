"""What a handler's failure leaves in the server's log: a refusal one line and no traceback (Gradio prints the
traceback of every gr.Error it catches unless told not to), an unexpected failure its traceback, once."""

from __future__ import annotations

import logging

import gradio as gr
import pytest

from studio.ui.errors import UNEXPECTED, friendly, refusal


def refuses():
    raise ValueError("prompt is too long: 3000 bytes")


def refuses_with_its_own_error():
    raise gr.Error("pick a run with saved checkpoints")


def breaks():
    raise RuntimeError("a bug")


def refuses_while_generating():
    yield "first"
    raise KeyError("no dataset 'x'")


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (refuses, "prompt is too long: 3000 bytes"),
        (refuses_with_its_own_error, "pick a run with saved checkpoints"),
        (lambda: list(friendly(refuses_while_generating)()), "no dataset 'x'"),
    ],
)
def test_a_refusal_is_one_line_in_the_log_and_no_traceback(handler, message, caplog) -> None:
    caplog.set_level(logging.INFO, logger="studio.ui")
    with pytest.raises(gr.Error) as raised:
        friendly(handler)()
    assert raised.value.message == message
    assert raised.value.print_exception is False  # Gradio prints no traceback for it
    assert len(caplog.records) == 1 and message in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is None and "\n" not in caplog.text.strip()


def test_an_unexpected_failure_keeps_its_traceback_once(caplog) -> None:
    with pytest.raises(gr.Error) as raised:
        friendly(breaks)()
    assert raised.value.message == UNEXPECTED
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None  # the traceback, in the log
    assert "RuntimeError: a bug" in caplog.text
    assert raised.value.print_exception is False  # and not a second, shorter one from Gradio


def test_refusal_is_a_quiet_gr_error(caplog) -> None:
    caplog.set_level(logging.INFO, logger="studio.ui")
    error = refusal("busy: try again in 5 s")
    assert isinstance(error, gr.Error) and error.print_exception is False and error.message.startswith("busy")
    assert [r.getMessage() for r in caplog.records] == ["refused: busy: try again in 5 s"]
