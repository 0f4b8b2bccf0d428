"""The training engine: one entry point for the CLI, the UI (as a subprocess) and tests.

- `config.resolve_config(preset=..., config_file=..., overrides=...)` -> RunConfig (validated before anything loads)
- `start.create_run(config, dataset)` -> run folder; `start.run_training(run_dir)` trains it (resumes if it has a
  checkpoint); `start.resume_run`, `start.export_run`
- `runs.replay(run_dir)`, `runs.list_runs()`, `runs.send_command(run_dir, "cancel" | "sample_now" | "save_now")`
"""
