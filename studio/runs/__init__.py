"""The run folder, below everything that reads or writes one (train writes it; generate, evaluate, the queue and
the UI read it): layout.py names every file, folder.py the config, event log and commands, checkpoints.py the
resumable states, names.py what a person calls a run, downloads.py its exports as files.

The folder's everyday functions are handed on here, so `from studio import runs` then `runs.replay(run_dir)` reads
as it did when the module lived in studio.train.
"""

from studio.runs.folder import (
    COMMANDS,
    EVENT_TYPES,
    KEYBOARD_INTERRUPT,
    PROCESS_DIED,
    TERMINAL,
    CommandWatcher,
    RunState,
    append_event,
    create_run_folder,
    list_runs,
    new_run_id,
    process_alive,
    read_config,
    read_control,
    read_events,
    replay,
    resolve_run,
    runs_root,
    send_command,
)
from studio.runs.layout import CONFIG, CONTROL, DATASET, EVENTS

__all__ = [
    "COMMANDS", "CONFIG", "CONTROL", "DATASET", "EVENTS", "EVENT_TYPES", "KEYBOARD_INTERRUPT", "PROCESS_DIED",
    "TERMINAL", "CommandWatcher", "RunState", "append_event", "create_run_folder", "list_runs", "new_run_id",
    "process_alive", "read_config", "read_control", "read_events", "replay", "resolve_run", "runs_root",
    "send_command",
]  # fmt: skip
