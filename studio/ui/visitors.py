"""Public mode in the page: which visitor a request comes from, and the id a visitor's browser keeps.

Gradio's session hash changes with every page load, so the visitor id lives in the browser (`gr.BrowserState`,
localStorage). The page's load event sends it; `on_visit` makes one for a new visitor and binds the page's session
to it, and every later event of that page finds its workspace through `PublicWorkspaces.get()`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio.workspace import PublicLimits, PublicWorkspaces, Workspaces

STORAGE_KEY = "diffusion-studio-visitor"
# BrowserState encrypts what it stores with this key, in the browser; the visitor id is random, so a fixed key only
# lets the id survive a restart of the app (the default, a random key per start, would lose every workspace)
STORAGE_SECRET = "diffusion-studio-visitor-id"


def current_session() -> str | None:
    """The session hash of the request being handled: Gradio sets the request in a context variable per event."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None) if request is not None else None


def public_workspaces(data_dir: Path, limits: PublicLimits | None = None) -> PublicWorkspaces:
    return PublicWorkspaces(data_dir, limits, current_session=current_session)


def visitor_state() -> gr.BrowserState:
    return gr.BrowserState(None, storage_key=STORAGE_KEY, secret=STORAGE_SECRET)


def visit_handler(workspaces: Workspaces):
    """The page's first load event: the visitor's id (a new one for a new visitor), bound to this page's session."""

    def on_visit(visitor: str | None) -> str | None:
        if not isinstance(workspaces, PublicWorkspaces):
            return visitor
        if not workspaces.is_visitor(visitor):
            visitor = workspaces.new_visitor()
        session = current_session()
        if session:
            workspaces.bind(session, visitor)
        return visitor

    return on_visit


def served_paths(data_dir: Path, public: bool) -> list[str]:
    """Folders Gradio may serve by URL. A private studio serves its data folder. A public one serves nothing by
    path, wherever its data folder is: a folder in `allowed_paths` is served to anyone who names a file in it,
    session or not (a visitor's id is in the path, and the shared outputs had guessable names). Gradio copies what
    a handler returns into its cache under a name hashed with a secret; handlers hand it served copies
    (`PublicWorkspaces.served_copy`), which lie in the temp folder, where Gradio takes files from."""
    if public:
        return []
    return [str(Path(data_dir).resolve())]
