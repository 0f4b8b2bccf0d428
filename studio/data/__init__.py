"""The dataset engine: import and validate uploads, caption, prepare for training.

upload --(importer)--> `data/datasets/<name>/` (dataset.py) --(captions, check)--> --(prepare)--> `prepared/<variant>/`

Entry points, each usable from the CLI, the UI and tests:
- `importer.import_dataset(name, sources, ...)` -> (Dataset, ImportReport): every file accepted or refused with a reason
- `dataset.Dataset.load(folder)` / `.save()`: images, captions in both conventions, manifest.json
- `captions.caption_dataset(dataset, captioner, ...)`, `find_replace`, `add_prefix_suffix`, `edit_caption`,
  `apply_trigger`; `captioners.load_captioner("pocket" | "template" | "blip" | "florence2" | id | folder)`
- `check.check_dataset(dataset)`: files intact, captions in sync, trigger rules, concept balance
- `prepare.prepare_dataset(dataset, PrepareSettings(...))` -> PreparedDataset; `prepare.bucket_batches(...)`

Nothing here imports torch except the pocket and transformers captioners, so the UI can use the rest freely.
"""
