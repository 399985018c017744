"""`netscope SUBCOMMAND`: each subcommand maps its flags 1:1 onto a config dataclass or function.

Errors the user caused print one line (`netscope: error: …`) and exit with status 2. Building the
parser imports nothing heavy: a subcommand's flags (and the config dataclass they come from) are
added only when that subcommand runs, so `netscope --help` starts without torch or matplotlib.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import json
import re
import sys
import types
import typing
from pathlib import Path

from netscope.errors import NetscopeError


class Command(typing.NamedTuple):
    """One subcommand: its one-line help, what adds its arguments, and what runs it."""

    help: str
    add_arguments: typing.Callable[[argparse.ArgumentParser], None]
    run: typing.Callable[[argparse.Namespace], None]


# Each section below defines `add_<command>(parser)` and `cmd_<command>(args)` and registers them.
COMMANDS: dict[str, Command] = {}


def field_comments(config_class: type) -> dict[str, str]:
    """Returns {field name: the comment on its line} from the dataclass's source: the comments
    that document each field there are the flags' help text here."""
    try:
        source = inspect.getsource(config_class)
    except (OSError, TypeError):  # no source shipped: the flags keep their defaults as help
        return {}
    found = (re.match(r"\s+(\w+)\s*:[^#]*#\s*(.+)$", line) for line in source.splitlines())
    return {match[1]: match[2] for match in found if match}


def add_config_args(parser, config_class: type, skip: tuple = ()) -> None:
    """Adds one `--field-name` flag per dataclass field; every default is None (= keep the
    dataclass's or recipe's default), so only what the user typed overrides it."""
    hints = typing.get_type_hints(config_class)
    comments = field_comments(config_class)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        if field.name in skip or flag in parser._option_string_actions:  # shared option: once
            continue
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
    parser.add_argument(
        "--out", help=f"output folder (default: {out_help}; @CHECKPOINT for earlier weights)"
    )


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """Adds --progress/--no-progress to a subcommand whose config has no `progress` field."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars on a terminal, one line per stage elsewhere (default: on)",
    )


def open_run(args: argparse.Namespace, folder: str):
    """Returns (the loaded run, the output folder: --out, or by the one rule of
    netscope.folders the run's folder for `folder` = "ANALYSIS[/VARIANT]")."""
    from netscope.folders import output_folder

    run = load_noted_run(args.run, args.checkpoint)
    return run, Path(args.out) if args.out else output_folder(run, folder)


def load_noted_run(path: str, checkpoint: str = "model.safetensors"):
    """Returns the loaded run, after saying on stderr (one line) when it is unfinished and
    which epoch's weights the command uses."""
    from netscope.provenance import unfinished_note
    from netscope.run import load_run

    run = load_run(path, checkpoint)
    note = unfinished_note(run)
    if note:
        print(f"netscope: note: {note}", file=sys.stderr, flush=True)
    return run


def expect(seconds: float | None, quick: str = "") -> None:
    """Prints the expected time of a long command on stderr (nothing under 10 s), with the
    flags of a quick version."""
    from netscope.costs import describe

    if seconds is not None and seconds >= 10:
        hint = f"; quick: {quick}" if quick else ""
        print(f"netscope: expected time {describe(seconds)}{hint}", file=sys.stderr, flush=True)


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
    print(json.dumps(data.dataset_info(args.name, root=args.data_dir), indent=2))


def add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "info", "fetch", "show"])
    parser.add_argument("name", nargs="?", help="mnist | fashion-mnist | cifar10 | PATH")
    parser.add_argument("index", nargs="?", type=int, help="show: which image (0, 1, …)")
    parser.add_argument("--split", default="train", choices=["train", "test"],
                        help="show: take the image from this split (default: train)")  # fmt: skip
    parser.add_argument("--out", help="show: also write the picture and its numbers to FILE.png")
    parser.add_argument("--data-dir", help="folder holding the data set files")
    parser.add_argument("--dest", help="fetch: folder to download into (default: the cache)")
    parser.add_argument("--base-url", help="fetch: a mirror to download from instead")
    add_progress_flag(parser)


COMMANDS["data"] = Command(
    "list, describe, download data sets or show an image", add_data, cmd_data
)


# ---------------------------------------------------------------- train, evaluate


def cmd_train(args: argparse.Namespace) -> None:
    from netscope.config import TrainConfig, recipe_config
    from netscope.costs import resume_seconds, train_seconds
    from netscope.device import processes_from_env
    from netscope.tensorboard_log import check_tensorboard
    from netscope.train import resume, train

    overrides = config_overrides(args, TrainConfig)
    quick = "--recipe fast (one epoch), or --epochs 1 --train-limit 10000"
    if args.resume:
        check_resume_flags(Path(args.resume), overrides)
        expect(resume_seconds(args.resume, args.epochs))
        run = resume(args.resume, epochs=args.epochs, progress=args.progress)
    else:
        overrides.pop("recipe", None)
        config = recipe_config(args.recipe, **overrides)  # no --recipe: default_recipe
        check_tensorboard(config)  # a missing package is the one line said, before any other
        expect(train_seconds(config), quick if config.epochs > 1 else "")
        run = train(config)
    if processes_from_env().writer:  # under torchrun, rank 0 alone reports
        error = run.info["metrics"]["test_error_pct"]
        print(f"netscope: run written to {run.path} (test error {error:.2f} %)")


def check_resume_flags(run_dir: Path, overrides: dict) -> None:
    """Raises NetscopeError for a flag that would change the config recorded in `run_dir`:
    --resume continues the recorded run, and only its length and progress bar may change."""
    from netscope.run import read_run_info
    from netscope.train import RESUMABLE

    recorded = read_run_info(run_dir)["config"]
    for name, value in overrides.items():
        if name not in RESUMABLE and recorded.get(name) != value:
            flag = "--" + name.replace("_", "-")
            raise NetscopeError(
                f"{flag} {value}: {run_dir} was trained with {flag} {recorded.get(name)}; "
                f"--resume continues the recorded config (only --epochs and --progress may "
                f"change; start a new run with --out to train differently)"
            )


def add_train(parser: argparse.ArgumentParser) -> None:
    from netscope.config import TrainConfig

    add_config_args(parser, TrainConfig)
    parser.add_argument("--resume", metavar="RUN", help="continue RUN from its last finished epoch")


COMMANDS["train"] = Command("train a model and write a run directory", add_train, cmd_train)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from netscope.evaluate import evaluation_folder, write_evaluation

    run = load_noted_run(args.run, args.checkpoint)
    out = Path(args.out) if args.out else evaluation_folder(run)
    record = write_evaluation(run, out)
    print(f"test error {record['test_error_pct']:.2f} % on {record['test_size']} test images")
    for name, error in record["per_class_error_pct"].items():
        print(f"  class {name:<12} {error:5.2f} %")
    print(
        "most confused (true -> predicted: count): "
        + ", ".join(f"{t}->{p}: {c}" for t, p, c in record["most_confused"])
    )
    print(f"netscope: wrote {out / 'evaluation.json'}, confusion.png and mistakes.png")


def add_evaluate(parser: argparse.ArgumentParser) -> None:
    add_run_args(parser, "RUN/evaluate")
    add_progress_flag(parser)


COMMANDS["evaluate"] = Command(
    "test error, per-class errors, confusion matrix", add_evaluate, cmd_evaluate
)

# ---------------------------------------------------------------- import (issue 15)


def cmd_import(args: argparse.Namespace) -> None:
    from netscope.import_model import import_model

    run = import_model(
        args.factory, args.weights, mean=args.mean, std=args.std, data=args.data,
        data_dir=args.data_dir, out=args.out,
    )  # fmt: skip
    print(f"test error {run.info['metrics']['test_error_pct']:.2f} % on {run.info['data']['name']}")
    print(f"netscope: run written to {run.path}; its model is your code, so commands that load it")
    print(f"need NETSCOPE_TRUST_CODE=1, e.g. NETSCOPE_TRUST_CODE=1 netscope inspect {run.path}")


def add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "factory",
        metavar="MODULE:FACTORY",
        help="what builds your nn.Module: a .py file or module name, a colon, and "
        "a function or class called without arguments (e.g. my_model.py:make)",
    )
    parser.add_argument(
        "--weights",
        required=True,
        metavar="FILE.safetensors",
        help="the model's state_dict, saved with safetensors.torch.save_file",
    )
    parser.add_argument(
        "--mean",
        required=True,
        type=float,
        nargs="+",
        help="per-channel mean the model's inputs were normalised with, on "
        "pixels in [0, 1] (one value, or one per channel; 0 if none)",
    )
    parser.add_argument(
        "--std",
        required=True,
        type=float,
        nargs="+",
        help="per-channel standard deviation, likewise (1 if none)",
    )
    parser.add_argument(
        "--data",
        default="mnist",
        help="the images the model classifies: mnist | fashion-mnist | cifar10 | "
        "PATH to an image folder (default: mnist)",
    )
    parser.add_argument("--data-dir", help="folder holding the data set files")
    parser.add_argument("--out", help="run directory to write (default: runs/<timestamp>)")
    add_progress_flag(parser)


COMMANDS["import"] = Command(
    "a run directory for your own trained model, so every command works on it",
    add_import,
    cmd_import,
)


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> None:
    from netscope.costs import demo_seconds
    from netscope.demo import DemoConfig, run_demo

    config = make_config(args, DemoConfig)
    trained = (Path(config.out) / "run.json").exists()  # a finished run is reused
    expect(demo_seconds(not trained, config.analyses), "--no-analyses")
    path = run_demo(config)
    print(f"netscope: demo report written to {path.resolve()} (open it in a browser)")
    print(f"netscope: next, draw digits for the network: netscope serve {path.parent}")


def add_demo(parser: argparse.ArgumentParser) -> None:
    from netscope.demo import DemoConfig

    add_config_args(parser, DemoConfig)


COMMANDS["demo"] = Command(
    "bundled MNIST -> lecture CNN -> evaluation, inspections, attacks -> HTML report",
    add_demo,
    cmd_demo,
)


# ---------------------------------------------------------------- inspect (issue 4)


def cmd_inspect(args: argparse.Namespace) -> None:
    from netscope.costs import inspect_seconds
    from netscope.folders import variant
    from netscope.inspect import InspectConfig, run_inspect

    config = make_config(args, InspectConfig)
    run, out = open_run(args, variant("inspect", *(config.stages or [])))
    expect(inspect_seconds(config), "--stages filters occlusion saliency (or --search-images 1000)")
    result = run_inspect(run, out, config)
    for figure in result["figures"]:
        print(f"  {figure['file']:<28} {figure['title']}")
    print(f"netscope: wrote {len(result['figures'])} figures and inspect.json to {out}")


def add_inspect(parser: argparse.ArgumentParser) -> None:
    from netscope.inspect import InspectConfig

    add_run_args(parser, "RUN/inspect, RUN/inspect/STAGE+STAGE with --stages")
    add_config_args(parser, InspectConfig)


COMMANDS["inspect"] = Command(
    "filters, top patches, occlusion, saliency, class models, dream, morph",
    add_inspect,
    cmd_inspect,
)

# ---------------------------------------------------------------- attack, fool (issue 5)


def cmd_attack(args: argparse.Namespace) -> None:
    from netscope.attack import ATTACKS, AttackConfig, run_attack
    from netscope.attack.pipeline import attack_folder, summary_line
    from netscope.costs import attack_seconds

    spec = ATTACKS.get(args.method or AttackConfig.method)
    options = None
    if spec is not None:  # an unknown method is named by AttackConfig below
        options = method_options_from_flags(args, spec)
    config = make_config(args, AttackConfig, options=options)
    run, out = open_run(args, attack_folder(config))
    expect(attack_seconds(config), quick_attack(config))
    record = run_attack(run, out, config)
    print(summary_line(record))
    print(f"netscope: wrote {out / 'attack.json'} and {len(record['figures'])} figure(s)")


def quick_attack(config) -> str:
    """Returns the flags of a quick version of an attack (fewer images, no success curve)."""
    quick = f"--n {min(100, config.n)}"
    return quick + (" --no-curve" if config.curve and config.eps is not None else "")


def method_options_from_flags(args: argparse.Namespace, spec):
    """Returns the attack's options dataclass built from its flags; a flag given for an option
    the method does not have is an error naming the ones it has."""
    from netscope.attack import ATTACKS

    own = {f.name for f in dataclasses.fields(spec.options)} if spec.options else set()
    every = {f.name for s in ATTACKS.values() if s.options for f in dataclasses.fields(s.options)}
    for name in sorted(every - own):
        if getattr(args, name, None) is not None:
            flags = ", ".join("--" + n.replace("_", "-") for n in sorted(own)) or "none"
            raise NetscopeError(
                f"--{name.replace('_', '-')}: not an option of {spec.name} (its options: {flags})"
            )
    return make_config(args, spec.options) if spec.options else None


def add_attack(parser: argparse.ArgumentParser) -> None:
    from netscope.attack import ATTACKS, AttackConfig

    add_run_args(parser, "RUN/attack/METHOD")
    add_config_args(parser, AttackConfig, skip=("options",))
    defaults: dict[str, list[str]] = {}
    for spec in ATTACKS.values():
        if spec.options:
            group = parser.add_argument_group(f"options of {spec.name}")
            add_config_args(group, spec.options)
            for field in dataclasses.fields(spec.options):
                defaults.setdefault(field.name, []).append(f"{spec.name} {field.default}")
    for name, each in defaults.items():
        if len(each) > 1:  # an option several methods share: say each one's default
            action = parser._option_string_actions["--" + name.replace("_", "-")]
            action.help = re.sub(
                r"\(default: [^)]*\)$", f"(default: {', '.join(each)})", action.help
            )


COMMANDS["attack"] = Command(
    "adversarial examples: fgsm, pgd, lbfgs, deepfool, universal", add_attack, cmd_attack
)


def cmd_fool(args: argparse.Namespace) -> None:
    from netscope.attack import FoolConfig, run_fool
    from netscope.costs import fool_seconds
    from netscope.folders import variant

    config = make_config(args, FoolConfig)
    run, out = open_run(args, variant("fool", None if config.method == "both" else config.method))
    expect(fool_seconds(config), "--method gradient --steps 300")
    record = run_fool(run, out, config)
    for method, result in record["results"].items():
        lowest = min(result["confidence"])
        print(f"{method}: lowest confidence {100 * lowest:.2f} % after {result['steps']} steps")
    print(f"netscope: wrote {out / 'fool.json'} and {len(record['figures'])} figure(s)")


def add_fool(parser: argparse.ArgumentParser) -> None:
    from netscope.attack import FoolConfig

    add_run_args(parser, "RUN/fool, RUN/fool/METHOD with --method")
    add_config_args(parser, FoolConfig)


COMMANDS["fool"] = Command("fooling images: noise the network calls a digit", add_fool, cmd_fool)

# ---------------------------------------------------------------- lesson (issue 6)


def cmd_lesson(args: argparse.Namespace) -> None:
    from netscope.costs import lesson_seconds
    from netscope.folders import lesson_folder
    from netscope.lessons import LESSONS, run_lesson

    if args.list or not args.name:
        for name, (_, description) in LESSONS.items():
            print(f"{name:<15} {description}")
        return
    out = Path(args.out) if args.out else lesson_folder(args.name, args.full, args.seed)
    quick = "leave out --full" if args.full else QUICK_LESSONS.get(args.name, "")
    expect(lesson_seconds(args.name, args.full), quick)
    result = run_lesson(args.name, out, full=args.full, seed=args.seed, progress=args.progress)
    for line in result.summary:
        print(line)
    print(f"netscope: wrote lesson.json and {len(result.figures)} figure(s) to {out}")


# the long lessons' quick versions (docs/generative.md), for the expected-time line
QUICK_LESSONS = {
    "gan": 'in Python, gan.run("out", config=gan.GanConfig(epochs=1, train_limit=3200))',
    "rnn": 'in Python, rnn.run("out", epochs=0.1)',
}


def add_lesson(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="lesson to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the lessons and exit")
    parser.add_argument(
        "--out", help="output folder (default: lessons/NAME, or lessons/NAME/full-seed-N)"
    )
    parser.add_argument("--full", action="store_true", help="the long version (more training)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_progress_flag(parser)


COMMANDS["lesson"] = Command("the lecture's classic experiments, runnable", add_lesson, cmd_lesson)

# ---------------------------------------------------------------- compare (issue 7)


def cmd_compare(args: argparse.Namespace) -> None:
    from netscope.compare import CompareConfig, run_compare
    from netscope.costs import compare_seconds
    from netscope.folders import output_folder, run_name, variant

    config = make_config(args, CompareConfig)
    run_a = load_noted_run(args.run_a, args.checkpoint_a)
    run_b = load_noted_run(args.run_b, args.checkpoint_b) if args.run_b else None
    name_b = run_name(run_b) if run_b else Path(config.responses or "").stem
    out = Path(args.out) if args.out else output_folder(run_a, variant("compare", name_b))
    expect(compare_seconds(config), "--n-images 300")
    record = run_compare(run_a, run_b, out, config)
    corner = "A \\ B"
    width = max(len(name) for name in record["layers_a"] + [corner])
    for measure in ("predictivity", "cka"):
        print(f"{measure} (rows: layers of A, columns: layers of B)")
        print(f"{corner:<{width}}  " + "  ".join(f"{n:>8}" for n in record["layers_b"]))
        for name, row in zip(record["layers_a"], record[measure]):
            cells = "  ".join("       –" if v is None else f"{v:8.3f}" for v in row)
            print(f"{name:<{width}}  {cells}")
    print(f"netscope: wrote {out / 'compare.json'} and {len(record['figures'])} heat maps")


def add_compare(parser: argparse.ArgumentParser) -> None:
    from netscope.compare import CompareConfig

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
    parser.add_argument(
        "--out", help="output folder (default: RUN_A/compare/NAME: RUN_B's or the responses')"
    )


COMMANDS["compare"] = Command(
    "ridge predictivity and linear CKA between the layers of two runs", add_compare, cmd_compare
)

# ---------------------------------------------------------------- report, serve (issue 8)


def cmd_report(args: argparse.Namespace) -> None:
    from netscope.report import ReportConfig, write_report

    config = make_config(args, ReportConfig)
    load_noted_run(args.run, config.checkpoint)
    path = write_report(args.run, config)
    print(f"netscope: report written to {path.resolve()} (open it in a browser; it works offline)")


def add_report(parser: argparse.ArgumentParser) -> None:
    from netscope.report import ReportConfig

    parser.add_argument("run", help="run directory")
    add_config_args(parser, ReportConfig)
    add_progress_flag(parser)


COMMANDS["report"] = Command(
    "write RUN/report.html: the run, curves, errors and every analysis found",
    add_report,
    cmd_report,
)


def cmd_serve(args: argparse.Namespace) -> None:
    from netscope.serve import ServeConfig, serve

    config = make_config(args, ServeConfig)
    load_noted_run(args.run)
    serve(args.run, config)


def add_serve(parser: argparse.ArgumentParser) -> None:
    from netscope.serve import ServeConfig

    parser.add_argument("run", help="run directory")
    add_config_args(parser, ServeConfig)
    add_progress_flag(parser)


COMMANDS["serve"] = Command(
    "local web page (127.0.0.1 only): draw a digit, look inside, fool the network",
    add_serve,
    cmd_serve,
)

# ---------------------------------------------------------------- entry point


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with the closest valid flag for a typo."""

    def error(self, message: str) -> typing.NoReturn:
        typo = re.search(r"unrecognized arguments: (--?[\w-]+)", message)
        if typo:
            flags = [f for a in self._all_actions() for f in a.option_strings]
            close = difflib.get_close_matches(typo[1].split("=")[0], flags, n=1)
            message += f" (did you mean {close[0]}?)" if close else ""
        self.exit(2, f"netscope: error: {message}\n")

    def _all_actions(self) -> list[argparse.Action]:
        actions = list(self._actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for parser in action.choices.values():
                    actions += parser._actions
        return actions


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Returns the argument parser with every subcommand; with `command` (a name, or "" for
    none) only that subcommand's arguments are added: the others' would import their configs'
    modules for nothing."""
    parser = Parser(
        prog="netscope", description="Train the classic networks on real data and look inside them."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, spec in COMMANDS.items():
        command_parser = sub.add_parser(name, help=spec.help, description=spec.help)
        if command in (None, name):
            spec.add_arguments(command_parser)
            command_parser.set_defaults(func=spec.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (2 for errors the user caused)."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen if chosen in COMMANDS else "").parse_args(argv)
    from netscope.progress import set_enabled

    # --no-progress also silences bars in code that has no progress flag of its own
    before = set_enabled(getattr(args, "progress", True) is not False)
    try:
        args.func(args)
    except NetscopeError as err:
        print(f"netscope: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("netscope: interrupted", file=sys.stderr)
        return 130
    finally:
        set_enabled(before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
