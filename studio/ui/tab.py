"""What the page knows of a tab: the one small shape every tab module's `build` returns.

A tab builds its components and wires its own buttons. The page (`studio.ui.app`) needs only what crosses tabs:
what the browser remembers of the tab across a reload (a `Memory`, kept with `gr.BrowserState`), and what the tab
does when it is opened or when the data folder's runs change (a run saved a checkpoint or finished, an adapter was
uploaded). A tab that others wire to (the Dataset tab's picker, the Playground's "Send to compare") adds its own
fields in a subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from studio.ui.remembered import Memory


@dataclass(frozen=True)
class Answer:
    """An event's handler with what it reads and writes, for the page to attach to a trigger. `inputs` as a set:
    `fn` gets their values as one dict by component (and may return updates as a dict by component)."""

    fn: Callable
    inputs: Any = None  # a component, a list or a set of them
    outputs: Any = None
    then: Answer | None = None  # a second step, once this one is done
    show_progress: str = "full"  # Gradio's default

    def attach(self, trigger: Callable) -> Any:
        """`trigger` (e.g. `tab.select`) runs this answer, then its `then`; returns the last event."""
        event = trigger(self.fn, self.inputs, self.outputs, show_progress=self.show_progress,
                        api_visibility="private")  # fmt: skip
        return self.then.attach(event.then) if self.then else event


@dataclass(kw_only=True)
class BuiltTab:
    """A built tab as the page sees it."""

    memory: Memory | None = None  # what a page reload gives back (None: nothing, the tab reads disk again)
    on_select: Answer | None = None  # what it reads again when its tab is opened
    on_runs_changed: Answer | None = None  # what it reads again when the data folder's runs or uploads change
