"""`netscope SUBCOMMAND`: each subcommand maps its flags 1:1 onto a config dataclass or function.

Errors the user caused print one line (`netscope: error: …`) and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

from netscope.errors import NetscopeError

# Each section below defines `add_<command>(sub)` and appends it here; build_parser calls them.
COMMANDS: list = []


def add_config_args(parser: argparse.ArgumentParser, config_class: type, skip: tuple = ()) -> None:
    """Adds one `--field-name` flag per dataclass field; every default is None (= keep the
    dataclass's or recipe's default), so only what the user typed overrides it."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        default = field.default if field.default is not dataclasses.MISSING else None
        if kind is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"(default: {default})",
            )
        elif typing.get_origin(kind) in (list, tuple):
            item = typing.get_args(kind)[0]
            parser.add_argument(
                flag, type=item, nargs="+", default=None, help=f"(default: {default})"
            )
        else:
            parser.add_argument(
                flag,
                type=kind,
                default=None,
                metavar=field.name.upper(),
                help=f"(default: {default})",
            )


def config_overrides(args: argparse.Namespace, config_class: type) -> dict:
    """Returns the dataclass fields the user set on the command line."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def make_config(args: argparse.Namespace, config_class: type, **extra):
    """Returns `config_class` built from its defaults, the user's flags and `extra`."""
    return config_class(**{**config_overrides(args, config_class), **extra})


# ---------------------------------------------------------------- data


def cmd_data(args: argparse.Namespace) -> None:
    from netscope import data

    if args.action == "list":
        for name, spec in data.SPECS.items():
            print(f"{name:<15} {len(spec.classes)} classes, {spec.files[0].url.rsplit('/', 1)[0]}/")
        return
    if not args.name:
        raise NetscopeError(
            f"netscope data {args.action}: name a data set ({', '.join(data.SPECS)})"
        )
    if args.action == "fetch":
        dest = Path(args.dest) if args.dest else None
        print(data.fetch(args.name, dest, args.base_url))
        return
    dataset = data.load_dataset(args.name, root=args.data_dir)
    print(json.dumps(_dataset_info(dataset), indent=2))


def _dataset_info(dataset) -> dict:
    return {
        "name": dataset.name,
        "source": dataset.source,
        "checksum": dataset.checksum,
        "image_shape": list(dataset.image_shape),
        "train": len(dataset.train_images),
        "test": len(dataset.test_images),
        "classes": dataset.classes,
        "train_class_counts": dataset.train_labels.bincount(
            minlength=len(dataset.classes)
        ).tolist(),
        "mean": dataset.mean,
        "std": dataset.std,
    }


def add_data(sub) -> None:
    parser = sub.add_parser("data", help="list, describe or download data sets")
    parser.add_argument("action", choices=["list", "info", "fetch"])
    parser.add_argument("name", nargs="?", help="mnist | fashion-mnist | cifar10 | PATH")
    parser.add_argument("--data-dir", help="folder holding the data set files")
    parser.add_argument("--dest", help="fetch: folder to download into (default: the cache)")
    parser.add_argument("--base-url", help="fetch: a mirror to download from instead")
    parser.set_defaults(func=cmd_data)


COMMANDS.append(add_data)


# ---------------------------------------------------------------- train, evaluate


def cmd_train(args: argparse.Namespace) -> None:
    from netscope.train import TrainConfig, recipe_config, resume, train

    if args.resume:
        run = resume(args.resume, epochs=args.epochs)
    else:
        overrides = config_overrides(args, TrainConfig)
        overrides.pop("recipe", None)
        run = train(recipe_config(args.recipe or "lecture", **overrides))
    print(
        f"netscope: run written to {run.path} (test error {run.info['metrics']['test_error_pct']:.2f} %)"
    )


def add_train(sub) -> None:
    from netscope.train import TrainConfig

    parser = sub.add_parser("train", help="train a model and write a run directory")
    add_config_args(parser, TrainConfig)
    parser.add_argument("--resume", metavar="RUN", help="continue RUN from its last finished epoch")
    parser.set_defaults(func=cmd_train)


COMMANDS.append(add_train)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from netscope.evaluate import evaluate, save_confusion_png
    from netscope.run import load_run, write_json

    run = load_run(args.run, args.checkpoint)
    dataset = run.load_dataset()
    evaluation = evaluate(
        run.model, dataset.normalize(dataset.test_images), dataset.test_labels, run.classes
    )
    out = Path(args.out) if args.out else run.path
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "evaluation.json", evaluation.as_dict())
    png = save_confusion_png(evaluation, out / "confusion.png")
    print(f"test error {evaluation.test_error_pct:.2f} % on {len(dataset.test_labels)} test images")
    for name, error in zip(run.classes, evaluation.per_class_error_pct):
        print(f"  class {name:<12} {error:5.2f} %")
    print(
        "most confused (true -> predicted: count): "
        + ", ".join(f"{t}->{p}: {c}" for t, p, c in evaluation.most_confused())
    )
    print(f"netscope: wrote {out / 'evaluation.json'} and {png}")


def add_evaluate(sub) -> None:
    parser = sub.add_parser("evaluate", help="test error, per-class errors, confusion matrix")
    parser.add_argument("run", help="run directory")
    parser.add_argument(
        "--checkpoint",
        default="model.safetensors",
        help="weights file inside RUN (e.g. checkpoints/epoch_03.safetensors)",
    )
    parser.add_argument("--out", help="output folder (default: the run directory)")
    parser.set_defaults(func=cmd_evaluate)


COMMANDS.append(add_evaluate)


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> None:
    from netscope.run import read_json
    from netscope.train import recipe_config, resume, train

    out = Path(args.out)
    if not (out / "run.json").exists():
        train(recipe_config("lecture", out=str(out)))
    elif (
        read_json(out / "run.json")["epochs_done"] < read_json(out / "run.json")["config"]["epochs"]
    ):
        resume(out)
    else:
        print(f"netscope: {out} already holds a finished run; reusing it", file=sys.stderr)
    cmd_evaluate(argparse.Namespace(run=str(out), checkpoint="model.safetensors", out=None))
    print(f"netscope: demo outputs are in {out.resolve()}")


def add_demo(sub) -> None:
    parser = sub.add_parser(
        "demo", help="train the lecture recipe on bundled MNIST and evaluate it"
    )
    parser.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    parser.set_defaults(func=cmd_demo)


COMMANDS.append(add_demo)


# ---------------------------------------------------------------- inspect (issue 4)

# ---------------------------------------------------------------- attack, fool (issue 5)

# ---------------------------------------------------------------- lesson (issue 6)

# ---------------------------------------------------------------- compare (issue 7)

# ---------------------------------------------------------------- report, serve (issue 8)

# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="netscope", description="Train the classic networks on real data and look inside them."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (2 for errors the user caused)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except NetscopeError as err:
        print(f"netscope: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("netscope: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
