"""`netscope SUBCOMMAND`: each subcommand maps its flags 1:1 onto a config dataclass or function.

Errors the user caused print one line (`netscope: error: …`) and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
import types
import typing
from pathlib import Path

from netscope.errors import NetscopeError

# Each section below defines `add_<command>(sub)` and appends it here; build_parser calls them.
COMMANDS: list = []


def field_comments(config_class: type) -> dict[str, str]:
    """Returns {field name: the comment on its line} from the dataclass's source: the comments
    that document each field there are the flags' help text here."""
    try:
        source = inspect.getsource(config_class)
    except (OSError, TypeError):  # no source shipped: the flags keep their defaults as help
        return {}
    found = (re.match(r"\s+(\w+)\s*:[^#]*#\s*(.+)$", line) for line in source.splitlines())
    return {match[1]: match[2] for match in found if match}


def add_config_args(parser: argparse.ArgumentParser, config_class: type, skip: tuple = ()) -> None:
    """Adds one `--field-name` flag per dataclass field; every default is None (= keep the
    dataclass's or recipe's default), so only what the user typed overrides it."""
    hints = typing.get_type_hints(config_class)
    comments = field_comments(config_class)
    for field in dataclasses.fields(config_class):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        default = field.default if field.default is not dataclasses.MISSING else None
        about = comments.get(field.name, "").replace("%", "%%")  # argparse formats help with %
        help_text = about if "default" in about else f"{about} (default: {default})".lstrip()
        if kind is bool:
            options = dict(action=argparse.BooleanOptionalAction)
        elif typing.get_origin(kind) in (list, tuple):
            options = dict(type=typing.get_args(kind)[0], nargs="+")
        else:
            options = dict(type=kind, metavar=field.name.upper())
        parser.add_argument(flag, default=None, help=help_text, **options)


def config_overrides(args: argparse.Namespace, config_class: type) -> dict:
    """Returns the dataclass fields the user set on the command line."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def make_config(args: argparse.Namespace, config_class: type, **extra):
    """Returns `config_class` built from its defaults, the user's flags and `extra`."""
    return config_class(**{**config_overrides(args, config_class), **extra})


def add_run_args(parser: argparse.ArgumentParser, out_help: str) -> None:
    """Adds the arguments every per-run analysis takes: RUN, --checkpoint and --out."""
    parser.add_argument("run", help="run directory")
    parser.add_argument(
        "--checkpoint",
        default="model.safetensors",
        help="weights file inside RUN (e.g. checkpoints/epoch_03.safetensors)",
    )
    parser.add_argument("--out", help=f"output folder (default: {out_help})")


def open_run(args: argparse.Namespace, folder: str = ""):
    """Returns (the loaded run, the output folder: --out or RUN/folder)."""
    from netscope.run import load_run

    run = load_run(args.run, args.checkpoint)
    return run, Path(args.out) if args.out else run.path / folder


# ---------------------------------------------------------------- data


def cmd_data(args: argparse.Namespace) -> None:
    from netscope import data

    if args.action == "list":
        print(data.format_dataset_table() + "\n\nnetscope loads:")
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
    if args.action == "show":
        from netscope.pixels import show

        print("\n".join(show(args.name, args.index, args.split, args.out, args.data_dir)))
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
    parser = sub.add_parser("data", help="list, describe, download data sets or show an image")
    parser.add_argument("action", choices=["list", "info", "fetch", "show"])
    parser.add_argument("name", nargs="?", help="mnist | fashion-mnist | cifar10 | PATH")
    parser.add_argument("index", nargs="?", type=int, help="show: which image (0, 1, …)")
    parser.add_argument("--split", default="train", choices=["train", "test"],
                        help="show: take the image from this split (default: train)")  # fmt: skip
    parser.add_argument("--out", help="show: also write the picture and its numbers to FILE.png")
    parser.add_argument("--data-dir", help="folder holding the data set files")
    parser.add_argument("--dest", help="fetch: folder to download into (default: the cache)")
    parser.add_argument("--base-url", help="fetch: a mirror to download from instead")
    parser.set_defaults(func=cmd_data)


COMMANDS.append(add_data)


# ---------------------------------------------------------------- train, evaluate


def cmd_train(args: argparse.Namespace) -> None:
    from netscope.attack.training import transform_for_config, transform_for_run
    from netscope.train import TrainConfig, processes_from_env, recipe_config, resume, train

    if args.resume:
        run = resume(
            args.resume, epochs=args.epochs, batch_transform=transform_for_run(args.resume)
        )
    else:
        overrides = config_overrides(args, TrainConfig)
        overrides.pop("recipe", None)
        config = recipe_config(args.recipe or "lecture", **overrides)
        run = train(config, batch_transform=transform_for_config(config))
    if processes_from_env().writer:  # under torchrun, rank 0 alone reports
        error = run.info["metrics"]["test_error_pct"]
        print(f"netscope: run written to {run.path} (test error {error:.2f} %)")


def add_train(sub) -> None:
    from netscope.train import TrainConfig

    parser = sub.add_parser("train", help="train a model and write a run directory")
    add_config_args(parser, TrainConfig)
    parser.add_argument("--resume", metavar="RUN", help="continue RUN from its last finished epoch")
    parser.set_defaults(func=cmd_train)


COMMANDS.append(add_train)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from netscope.evaluate import evaluate, save_confusion_png
    from netscope.run import write_json

    run, out = open_run(args)
    dataset = run.load_dataset()
    evaluation = evaluate(
        run.model, dataset.normalize(dataset.test_images), dataset.test_labels, run.classes
    )
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
    add_run_args(parser, "the run directory")
    parser.set_defaults(func=cmd_evaluate)


COMMANDS.append(add_evaluate)


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> None:
    from netscope.report.demo import DemoConfig, run_demo

    path = run_demo(make_config(args, DemoConfig))
    print(f"netscope: demo report written to {path.resolve()} (open it in a browser)")
    print(f"netscope: next, draw digits for the network: netscope serve {path.parent}")


def add_demo(sub) -> None:
    from netscope.report.demo import DemoConfig

    parser = sub.add_parser(
        "demo",
        help="bundled MNIST -> lecture CNN -> evaluation, inspections, attacks -> HTML report",
    )
    add_config_args(parser, DemoConfig)
    parser.set_defaults(func=cmd_demo)


COMMANDS.append(add_demo)


# ---------------------------------------------------------------- inspect (issue 4)


def cmd_inspect(args: argparse.Namespace) -> None:
    from netscope.inspect import InspectConfig, run_inspect

    run, out = open_run(args, "inspect")
    result = run_inspect(run, out, make_config(args, InspectConfig))
    for figure in result["figures"]:
        print(f"  {figure['file']:<28} {figure['title']}")
    print(f"netscope: wrote {len(result['figures'])} figures and inspect.json to {out}")


def add_inspect(sub) -> None:
    from netscope.inspect import InspectConfig

    parser = sub.add_parser(
        "inspect", help="filters, top patches, occlusion, saliency, class models, dream, morph"
    )
    add_run_args(parser, "RUN/inspect")
    add_config_args(parser, InspectConfig)
    parser.set_defaults(func=cmd_inspect)


COMMANDS.append(add_inspect)

# ---------------------------------------------------------------- attack, fool (issue 5)


def cmd_attack(args: argparse.Namespace) -> None:
    from netscope.attack import AttackConfig, run_attack
    from netscope.attack.pipeline import summary_line

    run, out = open_run(args, "attack")
    record = run_attack(run, out, make_config(args, AttackConfig))
    print(summary_line(record))
    print(f"netscope: wrote {out / 'attack.json'} and {len(record['figures'])} figure(s)")


def add_attack(sub) -> None:
    from netscope.attack import AttackConfig

    parser = sub.add_parser(
        "attack", help="adversarial examples: fgsm, pgd, lbfgs, deepfool, universal"
    )
    add_run_args(parser, "RUN/attack")
    add_config_args(parser, AttackConfig)
    parser.set_defaults(func=cmd_attack)


COMMANDS.append(add_attack)


def cmd_fool(args: argparse.Namespace) -> None:
    from netscope.attack import FoolConfig, run_fool

    run, out = open_run(args, "fool")
    record = run_fool(run, out, make_config(args, FoolConfig))
    for method, result in record["results"].items():
        lowest = min(result["confidence"])
        print(f"{method}: lowest confidence {100 * lowest:.2f} % after {result['steps']} steps")
    print(f"netscope: wrote {out / 'fool.json'} and {len(record['figures'])} figure(s)")


def add_fool(sub) -> None:
    from netscope.attack import FoolConfig

    parser = sub.add_parser("fool", help="fooling images: noise the network calls a digit")
    add_run_args(parser, "RUN/fool")
    add_config_args(parser, FoolConfig)
    parser.set_defaults(func=cmd_fool)


COMMANDS.append(add_fool)

# ---------------------------------------------------------------- lesson (issue 6)


def cmd_lesson(args: argparse.Namespace) -> None:
    from netscope.lessons import LESSONS, run_lesson

    if args.list or not args.name:
        for name, (_, description) in LESSONS.items():
            print(f"{name:<15} {description}")
        return
    out = Path(args.out) if args.out else Path("lessons") / args.name
    result = run_lesson(args.name, out, full=args.full, seed=args.seed)
    for line in result.summary:
        print(line)
    print(f"netscope: wrote lesson.json and {len(result.figures)} figure(s) to {out}")


def add_lesson(sub) -> None:
    parser = sub.add_parser("lesson", help="the lecture's classic experiments, runnable")
    parser.add_argument("name", nargs="?", help="lesson to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the lessons and exit")
    parser.add_argument("--out", help="output folder (default: lessons/NAME)")
    parser.add_argument("--full", action="store_true", help="the long version (more training)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.set_defaults(func=cmd_lesson)


COMMANDS.append(add_lesson)

# ---------------------------------------------------------------- compare (issue 7)


def cmd_compare(args: argparse.Namespace) -> None:
    from netscope.compare import CompareConfig, run_compare
    from netscope.run import load_run

    run_a = load_run(args.run_a, args.checkpoint_a)
    run_b = load_run(args.run_b, args.checkpoint_b) if args.run_b else None
    out = Path(args.out) if args.out else run_a.path / "compare"
    record = run_compare(run_a, run_b, out, make_config(args, CompareConfig))
    corner = "A \\ B"
    width = max(len(name) for name in record["layers_a"] + [corner])
    for measure in ("predictivity", "cka"):
        print(f"{measure} (rows: layers of A, columns: layers of B)")
        print(f"{corner:<{width}}  " + "  ".join(f"{n:>8}" for n in record["layers_b"]))
        for name, row in zip(record["layers_a"], record[measure]):
            cells = "  ".join("       –" if v is None else f"{v:8.3f}" for v in row)
            print(f"{name:<{width}}  {cells}")
    print(f"netscope: wrote {out / 'compare.json'} and {len(record['figures'])} heat maps")


def add_compare(sub) -> None:
    from netscope.compare import CompareConfig

    parser = sub.add_parser(
        "compare", help="ridge predictivity and linear CKA between the layers of two runs"
    )
    parser.add_argument("run_a", metavar="RUN_A", help="run directory whose layers predict")
    parser.add_argument(
        "run_b", metavar="RUN_B", nargs="?", help="run directory to predict (or --responses)"
    )
    add_config_args(parser, CompareConfig)
    for run in ("a", "b"):
        parser.add_argument(
            f"--checkpoint-{run}",
            default="model.safetensors",
            help=f"weights file inside RUN_{run.upper()} (e.g. checkpoints/epoch_00.safetensors)",
        )
    parser.add_argument("--out", help="output folder (default: RUN_A/compare)")
    parser.set_defaults(func=cmd_compare)


COMMANDS.append(add_compare)

# ---------------------------------------------------------------- report, serve (issue 8)


def cmd_report(args: argparse.Namespace) -> None:
    from netscope.report import ReportConfig, write_report

    path = write_report(args.run, make_config(args, ReportConfig))
    print(f"netscope: report written to {path.resolve()} (open it in a browser; it works offline)")


def add_report(sub) -> None:
    from netscope.report import ReportConfig

    parser = sub.add_parser(
        "report", help="write RUN/report.html: the run, curves, errors and every analysis found"
    )
    parser.add_argument("run", help="run directory")
    add_config_args(parser, ReportConfig)
    parser.set_defaults(func=cmd_report)


COMMANDS.append(add_report)


def cmd_serve(args: argparse.Namespace) -> None:
    from netscope.serve import ServeConfig, serve

    serve(args.run, make_config(args, ServeConfig))


def add_serve(sub) -> None:
    from netscope.serve import ServeConfig

    parser = sub.add_parser(
        "serve", help="local web page (127.0.0.1 only): draw a digit, look inside, fool the network"
    )
    parser.add_argument("run", help="run directory")
    add_config_args(parser, ServeConfig)
    parser.set_defaults(func=cmd_serve)


COMMANDS.append(add_serve)

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
