"""Predict what validators will score: replay their challenge pipeline against a cascade preset
in-process, or against a running miner over a real dendrite, and score it with their formula."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cascade.calibration import matthews
from cascade.lab.challenge import DEFAULT_PIPELINE, LEVELS, PIPELINES, draw_pipeline, make_challenge, parse_pipeline_mix
from cascade.lab.datasets import open_labelled
from cascade.image import ImageLimits, decode_base64_image
from cascade.scenes import draw_frame_size, generate_scene
from cascade.lab.training import HELDOUT_SCENE_SEED

from ..serving.scoring import ValidatorScore


@dataclass
class Case:
    jpeg: bytes
    label: int
    level: int | None  # None: pipeline v0.4 (no augmentation)
    pipeline: str = DEFAULT_PIPELINE
    roadwork_pixels: int | None = None  # procedural positives only: how much roadwork the crop left

    def decoded(self, limits: ImageLimits = ImageLimits()) -> Image.Image:
        """The image as the miner's forward decodes it: from base64, under `limits`."""
        return decode_base64_image(base64.b64encode(self.jpeg).decode(), limits)


@dataclass
class Report:
    pipeline: str
    count: int
    accuracy: float
    mcc: float
    accuracy_by_level: dict[int, float]
    count_by_level: dict[int, int]
    latency_p50_ms: float
    latency_p99_ms: float
    mean_reward: float
    final_reward: float
    unanswered: int
    # Procedural scenes only: positives whose roadwork the validator's crop removed entirely. No
    # model can see it, so accuracy cannot exceed 1 - this / count.
    positives_without_roadwork: int | None = None
    # Why requests went unanswered (over a dendrite): "403 hotkey ... exceeds 5 requests/s" -> count.
    unanswered_reasons: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        lines = [
            f"pipeline {self.pipeline} ({PIPELINES.get(self.pipeline, 'a mix')})",
            f"challenges {self.count}   accuracy {self.accuracy:.3f}   MCC {self.mcc:.3f}   unanswered {self.unanswered}",
            *(["level  count  accuracy"] if self.accuracy_by_level else []),
            *(f"{lvl:>5}  {self.count_by_level[lvl]:>5}  {acc:8.3f}" for lvl, acc in sorted(self.accuracy_by_level.items())),
            f"latency p50 {self.latency_p50_ms:.0f} ms   p99 {self.latency_p99_ms:.0f} ms",
            f"validator reward (0.5*MCC100 + 0.5*acc10)^3: mean {self.mean_reward:.3f}, last {self.final_reward:.3f}",
        ]
        for reason, count in sorted(self.unanswered_reasons.items(), key=lambda item: -item[1]):
            lines.append(f"UNANSWERED {count}: {reason}")
        if self.positives_without_roadwork is not None:
            lines.append(
                f"positives whose roadwork the augmentation removed entirely: {self.positives_without_roadwork}"
                f" (accuracy ceiling {1 - self.positives_without_roadwork / self.count:.3f})"
            )
        return "\n".join(lines)


def build_cases(count: int, seed: int, data: str = "scenes", split: str = "all", pipeline: str = DEFAULT_PIPELINE) -> list[Case]:
    """Labels 50/50 (and under v0.2 / v0.3 levels 0-3 at p = 0.25), as the validator draws them.
    Procedural scenes come at the sizes validators' images have (cascade/scenes.py FRAME_SIZES).
    `pipeline`: one name, or a weighted mix ('v0.4=0.6,v0.3=0.2,v0.2=0.2') drawn per challenge."""
    mix = parse_pipeline_mix(pipeline)
    rng = np.random.default_rng([seed, 7])
    folder = None if data == "scenes" else open_labelled(data, split=split)
    cases = []
    for i in range(count):
        label = int(rng.random() < 0.5)
        masks = []
        if folder is None:
            size = draw_frame_size(rng)
            scene = generate_scene(HELDOUT_SCENE_SEED + seed * 1_000_003 + i, roadwork=bool(label), size=size)
            image, masks = scene.image, [scene.roadwork_mask()] if label else []
        else:
            image, drawn = folder.sample(rng)
            label = int(drawn)
        chosen = draw_pipeline(mix, rng) if len(mix) > 1 else next(iter(mix))
        challenge = make_challenge(image, rng, pipeline=chosen, masks=masks)
        cases.append(Case(challenge.jpeg, label, challenge.level, chosen, challenge.roadwork_pixels))
    return cases


def cached_cases(path: Path | None, count: int, seed: int, data: str, split: str, pipeline: str) -> list[Case]:
    """build_cases, kept in `path` (JSON) so several models are scored on the very same challenges
    without building them again; a file written for other arguments is refused, never reused."""
    key = {"count": count, "seed": seed, "data": data, "split": split, "pipeline": pipeline}
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        if saved["key"] != key:
            raise ValueError(f"{path} holds challenges for {saved['key']}, not {key}: use another --cases-file")
        return [Case(**{**c, "jpeg": base64.b64decode(c["jpeg"])}) for c in saved["cases"]]
    cases = build_cases(count, seed, data, split, pipeline)
    if path is not None:
        rows = [{**asdict(c), "jpeg": base64.b64encode(c.jpeg).decode()} for c in cases]
        path.write_text(json.dumps({"key": key, "cases": rows}))
    return cases


def predict_in_process(cases: list[Case], preset: str) -> list[tuple[float, float]]:
    from cascade.config import build_cascade, load_config
    config = load_config(preset)
    cascade = build_cascade(config)
    results = []
    for case in cases:  # the same decode path as the miner's forward
        started = time.perf_counter()
        image = case.decoded(config.image.limits())
        results.append((cascade.predict(image).probability, time.perf_counter() - started))
    return results


def predict_over_dendrite(cases: list[Case], ready_file: Path, signer_uri: str, concurrency: int) -> tuple[list[tuple[float, float]], Counter]:
    """(prediction or -1, seconds) per case, and why the unanswered ones were not answered."""
    from .client import run

    ready = json.loads(ready_file.read_text())
    job = {
        "axon": {"ip": ready["ip"], "port": ready["port"], "hotkey": ready["hotkey"]},
        "signer": {"uri": signer_uri},
        "requests": [{"synapse": "ImageSynapse", "image": base64.b64encode(c.jpeg).decode()} for c in cases],
        "concurrency": concurrency,
    }
    reply = asyncio.run(run(job))
    reasons = Counter(f"{r['status_code']} {(r['status_message'] or '').strip()[:120]}" for r in reply["results"] if r["status_code"] != 200)
    return [(r["prediction"] if r["status_code"] == 200 else -1.0, r["wall_s"]) for r in reply["results"]], reasons


def score(cases: list[Case], predictions: list[tuple[float, float]]) -> Report:
    pipelines = sorted({c.pipeline for c in cases})
    labels = np.array([c.label for c in cases])
    answered = np.array([p != -1 for p, _ in predictions])
    decided = np.round(np.array([p for p, _ in predictions]))  # -1 stays -1: never equal to a label
    correct = decided == labels
    by_level = {lvl: [i for i, c in enumerate(cases) if c.level == lvl] for lvl in LEVELS}
    validator = ValidatorScore()
    rewards = [validator.record(p, int(y)) for (p, _), y in zip(predictions, labels)]
    latencies = sorted(t * 1000 for _, t in predictions)
    return Report(
        pipeline=pipelines[0] if len(pipelines) == 1 else "+".join(pipelines),
        count=len(cases),
        accuracy=float(correct.mean()),
        mcc=matthews(labels[answered], decided[answered]),
        accuracy_by_level={lvl: float(correct[idx].mean()) for lvl, idx in by_level.items() if idx},
        count_by_level={lvl: len(idx) for lvl, idx in by_level.items()},
        latency_p50_ms=statistics.median(latencies),
        latency_p99_ms=latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))],
        mean_reward=float(np.mean(rewards)),
        final_reward=rewards[-1],
        unanswered=int((~answered).sum()),
        positives_without_roadwork=(
            sum(c.label == 1 and c.roadwork_pixels == 0 for c in cases)
            if any(c.roadwork_pixels is not None for c in cases) else None
        ),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--config", default="cpu-default", help="cascade preset or YAML to run in-process")
    target.add_argument("--ready-file", type=Path, help="query a running miner (its --local.ready_file) over a dendrite")
    parser.add_argument("--signer-uri", default="//Alice", help="validator key for --ready-file (local mode registers it)")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight with --ready-file")
    parser.add_argument("--count", type=int, default=400, help="challenges")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipeline", choices=tuple(PIPELINES), default=DEFAULT_PIPELINE,
                        help="validator release to replay: " + "; ".join(f"{k}: {v}" for k, v in PIPELINES.items()))
    parser.add_argument("--data", default="scenes", help="'scenes' (held-out procedural seeds), or labelled images: a folder with roadwork/ and none/, a labels .csv, a saved Hugging Face dataset")
    parser.add_argument("--split", choices=("all", "heldout", "train"), default="all", help="which part of --data: 'heldout' is what `train` kept out")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--cases-file", type=Path, help="keep the built challenges here and reuse them (same arguments only): score several models on the same ones")


def run_eval(args: argparse.Namespace) -> Report:
    started = time.perf_counter()
    cases = cached_cases(args.cases_file, args.count, args.seed, args.data, args.split, args.pipeline)
    print(f"built {len(cases)} challenges in {time.perf_counter() - started:.0f}s; predicting ...", flush=True)
    reasons: Counter = Counter()
    if args.ready_file:
        predictions, reasons = predict_over_dendrite(cases, args.ready_file, args.signer_uri, args.concurrency)
    else:
        predictions = predict_in_process(cases, args.config)
    report = score(cases, predictions)
    report.unanswered_reasons = dict(reasons)
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return report
