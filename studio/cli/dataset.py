"""`studio dataset list | import | example | check | caption | edit | prepare | train-captioner`: the dataset engine
from a shell."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studio.paths import POCKET_MODEL_DIR

_DEFAULT_TOKENIZER = POCKET_MODEL_DIR / "tokenizer"


def register(commands) -> None:
    p = commands.add_parser("dataset", help="Import, check, caption and prepare training images.")
    sub = p.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")

    lst = sub.add_parser("list", help="List the datasets and their image counts.")
    _common(lst)
    lst.set_defaults(handler=run_list)

    imp = sub.add_parser("import", help="Import images (files, folders, zip archives) into a dataset.")
    imp.add_argument("sources", nargs="+", help="Image files, caption files, folders or .zip archives.")
    imp.add_argument("--name", required=True, help="Dataset name (letters, digits, '.', '_', '-').")
    imp.add_argument("--add", action="store_true", help="Add to an existing dataset instead of creating one.")
    _resolution_options(imp, "Training resolution; smaller images get a warning")
    imp.add_argument("--background", default="white", help="Colour for transparent pixels (name or #rrggbb).")
    imp.add_argument("--trigger", help="Trigger word: set for the dataset and prepended to instance captions.")
    _caption_length_options(imp)
    _common(imp)
    imp.set_defaults(handler=run_import)

    from studio.data.examples import EXAMPLES

    ex = sub.add_parser("example", help="Make an example dataset for the pocket model (drawn, nothing downloaded).")
    ex.add_argument("example", choices=list(EXAMPLES), help="; ".join(f"{k}: {e.title}" for k, e in EXAMPLES.items()))
    _common(ex)
    ex.set_defaults(handler=run_example)

    chk = sub.add_parser("check", help="Check files, captions (both conventions), trigger and balance.")
    chk.add_argument("name")
    _caption_length_options(chk)
    _common(chk)
    chk.set_defaults(handler=run_check)

    from studio.data.prepare import MODES, PrepareSettings

    defaults = PrepareSettings()
    help_of = {name: f.metadata["help"] for name, f in PrepareSettings.__dataclass_fields__.items()}
    pre = sub.add_parser("prepare", help="Resize and crop to the training resolution, with a manifest of hashes.")
    pre.add_argument("name")
    _resolution_options(pre, help_of["resolution"].rstrip("."))
    pre.add_argument("--mode", choices=MODES, default=defaults.mode, help=help_of["mode"])
    pre.add_argument("--step", type=int, default=defaults.bucket_step, help=help_of["bucket_step"])
    pre.add_argument("--max-aspect", type=float, default=defaults.max_aspect, help=help_of["max_aspect"])
    pre.add_argument("--allow-empty-captions", action="store_true", help=help_of["allow_empty_captions"])
    _common(pre)
    pre.set_defaults(handler=run_prepare)

    cap = sub.add_parser("caption", help="Caption images that have none (all with --overwrite).")
    cap.add_argument("name")
    cap.add_argument(
        "--captioner",
        default="pocket",
        help="pocket (offline default), template, blip, florence2, or a BLIP/Florence-2 hub id or folder.",
    )
    cap.add_argument("--overwrite", action="store_true", help="Replace existing captions too.")
    cap.add_argument("--trigger", help="Trigger word, prepended to instance captions (default: the dataset's).")
    cap.add_argument("--class-word", default="", help="For the template captioner: the class, e.g. 'dog'.")
    cap.add_argument("--device", default="cpu", help="Device for transformers captioners (cpu, cuda, mps).")
    _caption_length_options(cap)
    _common(cap)
    cap.set_defaults(handler=run_caption)

    edit = sub.add_parser("edit", help="Edit captions: find/replace, prefix/suffix, one caption, the trigger.")
    edit.add_argument("name")
    edit.add_argument("--find", help="Text to find in every caption.")
    edit.add_argument("--replace", default="", help="Replacement for --find.")
    edit.add_argument("--regex", action="store_true", help="--find is a regular expression.")
    edit.add_argument("--prefix", default="", help="Text to put before every caption.")
    edit.add_argument("--suffix", default="", help="Text to put after every caption.")
    edit.add_argument("--set", action="append", default=[], metavar="FILE=TEXT", help="Set one caption (repeatable).")
    edit.add_argument("--trigger", help="Set the trigger and prepend it to instance captions that lack it.")
    _caption_length_options(edit)
    _common(edit)
    edit.set_defaults(handler=run_edit)

    train = sub.add_parser("train-captioner", help="Retrain the pocket captioner (~1 minute on one CPU thread).")
    train.add_argument("--out", default=None, help="Folder for the weights (default: assets/pocket-captioner).")
    train.add_argument("--steps", type=int, default=None, help="Training steps (default: the recipe's).")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--json", action="store_true", help="Print the result as JSON.")
    train.set_defaults(handler=run_train_captioner)


def _resolution_options(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--model", default="pocket", help="The base model the dataset is for; sets the default resolution (pocket)."
    )
    parser.add_argument(
        "--resolution", type=int, default=None, help=f"{text} (default: the model's, 64 px for pocket, 512 for SD 1.5)."
    )


def _resolution(args: argparse.Namespace) -> int:
    from studio.paths import model_resolution

    return args.resolution or model_resolution(args.model)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=None, help="Folder that holds the datasets (default: data/datasets).")
    parser.add_argument("--json", action="store_true", help="Print the report as JSON (for scripts).")


def _caption_length_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tokenizer",
        default=str(_DEFAULT_TOKENIZER),
        help="CLIP tokenizer folder (or model folder) to count caption tokens; 'none' to skip the length check.",
    )
    parser.add_argument(
        "--ti",
        action="append",
        default=[],
        metavar="TOKEN=VECTORS",
        help="A textual-inversion token and its vector count, counted expanded (repeatable).",
    )


def _counter(args: argparse.Namespace):
    from studio.data.caption_text import TokenCounter

    ti_tokens = {}
    for spec in args.ti:
        token, _, vectors = spec.rpartition("=")
        if not token or not vectors.isdigit():
            raise ValueError(f"--ti wants TOKEN=VECTORS, e.g. '<sks>=4', got {spec!r}")
        ti_tokens[token] = int(vectors)
    if args.tokenizer.lower() == "none":
        return None
    folder = Path(args.tokenizer)
    if not folder.exists() and folder == _DEFAULT_TOKENIZER:
        return None  # no pocket model in this checkout: lengths are not checked, and the report says so
    return TokenCounter.from_folder(folder, ti_tokens)


def _root(args: argparse.Namespace) -> Path:
    from studio.data.dataset import datasets_root

    return Path(args.root) if args.root else datasets_root()


def _load(args: argparse.Namespace):
    from studio.data.dataset import Dataset, validate_name

    return Dataset.load(_root(args) / validate_name(args.name))


def _print(args: argparse.Namespace, data: dict, lines: list[str]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else "\n".join(lines))


def _issue_line(mark: str, where: str, issue) -> str:
    return f"  {mark} {where}: {issue.code} - {issue.message}"


def _warning_lines(pairs: list[tuple[str, object]]) -> list[str]:
    """One line per warning, except that a code shared by many files is one line with their count."""
    by_code: dict[str, list[tuple[str, object]]] = {}
    for file, issue in pairs:
        by_code.setdefault(issue.code, []).append((file, issue))
    lines = []
    for code, group in by_code.items():
        if len(group) > 3:
            files = ", ".join(file for file, _ in group[:3])
            lines.append(f"  ! {len(group)} files: {code} - {group[0][1].message} ({files}, ...)")
        else:
            lines += [_issue_line("!", file, issue) for file, issue in group]
    return lines


def run_list(args: argparse.Namespace) -> int:
    from studio.data.dataset import Dataset, list_datasets

    root = _root(args)
    counts = {name: len(Dataset.load(root / name).items) for name in list_datasets(root)}
    lines = [f"{name}: {count} images" for name, count in counts.items()] or [f"no datasets in {root}"]
    _print(args, {"root": str(root), "datasets": counts}, lines)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from PIL import ImageColor

    from studio.data.importer import ImportOptions, import_dataset
    from studio.data.validate import ImageRules

    try:
        background = ImageColor.getrgb(args.background)[:3]
    except ValueError as error:
        raise ValueError(f"--background: {error}") from error
    counter = _counter(args)
    options = ImportOptions(
        rules=ImageRules(resolution=_resolution(args), background=background),
        trigger=args.trigger,
        token_counter=counter,
    )
    dataset, report = import_dataset(args.name, args.sources, root=_root(args), options=options, add=args.add)
    lines = [f"dataset {dataset.name} ({dataset.root}): {report.summary()}"]
    lines += [_issue_line("x", r.source, r.issue) for r in report.rejected]
    lines += _warning_lines([(item.file, w) for item in report.accepted for w in item.warnings])
    lines += [_issue_line("!", "upload", note) for note in report.notes]
    if counter is None:
        lines.append("  (caption lengths not checked: no tokenizer)")
    _print(args, report.as_dict(), lines)
    return 0


def run_example(args: argparse.Namespace) -> int:
    from studio.data.examples import EXAMPLES, create_example

    dataset = create_example(args.example, _root(args))
    about = EXAMPLES[args.example].about
    data = {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "images": len(dataset.items),
        "trigger": dataset.trigger,
    }
    _print(args, data, [f"dataset {dataset.name} ({dataset.root}): {len(dataset.items)} images", f"  {about}"])
    return 0


def run_check(args: argparse.Namespace) -> int:
    from studio.data.check import check_dataset

    dataset = _load(args)
    report = check_dataset(dataset, _counter(args))
    lines = [f"dataset {dataset.name}: {report.summary()}" + ("" if report.ok else "  (NOT ready to train)")]
    if dataset.trigger:
        lines.append(f"  trigger: {dataset.trigger}")
    for name, count in report.balance.concepts.items():
        lines.append(f"  concept '{name}' ({count.role}): {count.images} images, {count.samples} per epoch")
    lines += [_issue_line("!", "balance", w) for w in report.balance.warnings]
    lines += _warning_lines([(file, issue) for file, issues in report.problems.items() for issue in issues])
    _print(args, report.as_dict(), lines)
    return 0 if report.ok else 1


def run_prepare(args: argparse.Namespace) -> int:
    from studio.data.prepare import PrepareSettings, prepare_dataset

    settings = PrepareSettings(
        resolution=_resolution(args),
        mode=args.mode,
        bucket_step=args.step,
        max_aspect=args.max_aspect,
        allow_empty_captions=args.allow_empty_captions,
    )
    prepared = prepare_dataset(_load(args), settings)
    lines = [f"prepared {len(prepared.items)} images into {prepared.folder}", f"  fingerprint {prepared.fingerprint}"]
    lines += [f"  bucket {bucket}: {count}" for bucket, count in prepared.buckets().items()]
    _print(args, {"folder": str(prepared.folder), **prepared.as_dict()}, lines)
    return 0


def run_caption(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from studio.data.captioners import load_captioner
    from studio.data.captions import caption_dataset

    dataset = _load(args)
    trigger = args.trigger or dataset.trigger or ""
    captioner = load_captioner(args.captioner, trigger=trigger, class_word=args.class_word, device=args.device)
    with tqdm(desc="captioning", unit="image", disable=args.json) as bar:

        def on_progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = caption_dataset(
            dataset, captioner, args.overwrite, args.trigger, _counter(args), on_progress=on_progress
        )
    dataset.save()
    lines = [f"dataset {dataset.name}: {report.summary()} with {captioner.name}"]
    lines += [f"  {item.file}: {item.caption}" for item in dataset.items if item.file in set(report.captioned)]
    _print(args, report.as_dict(), lines)
    return 0


def run_edit(args: argparse.Namespace) -> int:
    from studio.data import captions

    dataset = _load(args)
    counter = _counter(args)
    changed: dict[str, int] = {}
    if args.find:
        changed["find-replace"] = captions.find_replace(dataset, args.find, args.replace, args.regex, counter=counter)
    if args.prefix or args.suffix:
        changed["prefix-suffix"] = captions.add_prefix_suffix(dataset, args.prefix, args.suffix, counter=counter)
    for spec in args.set:
        file, sep, text = spec.partition("=")
        if not sep:
            raise ValueError(f"--set wants FILE=TEXT, got {spec!r}")
        captions.edit_caption(dataset, file, text, counter)
        changed["set"] = changed.get("set", 0) + 1
    if args.trigger:
        changed["trigger"] = captions.apply_trigger(dataset, args.trigger, counter)
    if not changed:
        raise ValueError("nothing to do: give --find, --prefix, --suffix, --set or --trigger")
    dataset.save()
    _print(args, {"changed": changed}, [f"{what}: {n} caption(s) changed" for what, n in changed.items()])
    return 0


def run_train_captioner(args: argparse.Namespace) -> int:
    from studio.data.captioners.pocket import POCKET_CAPTIONER_DIR, PocketCaptionerTraining, train_pocket_captioner

    recipe = PocketCaptionerTraining(seed=args.seed)
    if args.steps is not None:
        recipe.steps = args.steps
    out = Path(args.out) if args.out else POCKET_CAPTIONER_DIR
    report = train_pocket_captioner(out, recipe)
    summary = {"out": str(out), "exact": report["exact"], "count": report["count"], "seconds": report["seconds"]}
    lines = [f"pocket captioner saved to {out}: {report['exact']:.1%} exact captions on {report['count']} fresh images"]
    _print(args, summary | {"misses": report["misses"][:10]}, lines)
    return 0
