"""An ultralytics YOLO detector as a tier: roadwork objects become evidence and a probability.

Detections whose class is mapped to a roadwork category (cones, barriers, signs, machinery,
workers ...) are combined by noisy-OR of their confidences, then squeezed into [floor, ceiling]:
seeing nothing is not proof of no roadwork (a crop can cut it out), and one box is not certainty.

Two runtimes find the boxes: `torch` runs `detector.pt` through ultralytics' predictor;
`onnxruntime` runs `detector.onnx` (written beside it by `natix-miner export-onnx`) with numpy
pre- and post-processing and imports neither torch nor ultralytics (cascade/runtimes/onnx_yolo.py).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import yaml
from PIL import Image

from ..extras import require_extra
from ..image import fit_square
from ..runtimes.onnx_cpu import file_sha256
from ..runtimes.onnx_yolo import Detection, OnnxYolo
from ..tier import Tier, TierOutput

WEIGHTS_FILE = "detector.pt"  # in a detector folder (what `natix-miner train-detector` writes, builtin:yolo11n-roadwork)
ONNX_FILE = "detector.onnx"  # beside it, from `natix-miner export-onnx FOLDER`
MANIFEST = "manifest.yaml"


def _side(x_centre: float, width: float) -> str:
    third = x_centre / max(width, 1.0)
    return "on the left" if third < 1 / 3 else "on the right" if third > 2 / 3 else "in the centre"


def describe_detections(detections: list[tuple[str, float, float]]) -> str:
    """(category, x centre, image width) per detection -> '2 cones on the left, 1 barrier in the centre'."""
    counts = Counter((category, _side(x, width)) for category, x, width in detections)
    parts = []
    for (category, side), count in counts.most_common():
        parts.append(f"{count} {category}{'s' if count > 1 and not category.endswith('s') else ''} {side}")
    return ", ".join(parts)



def import_yolo():
    """ultralytics' YOLO class, imported so that no request can make it install anything.

    Importing ultralytics replaces PIL.Image.open with a version that, for an image PIL cannot
    identify, runs ultralytics' requirement check for pi-heif: a `pip install` inside the serving
    process on a machine with internet, and a refusal that names pi_heif instead of the real cause.
    Auto-install goes off before the import (ultralytics reads it then) and PIL's own open comes back.
    """
    os.environ["YOLO_AUTOINSTALL"] = "false"
    with require_extra("the detector tier with runtime torch"):
        from ultralytics import YOLO
        from ultralytics.utils import checks, patches
    checks.AUTOINSTALL = False  # in case ultralytics was imported before this function ran
    Image.open = patches._image_open
    return YOLO


def onnx_weights(weights: Path) -> Path:
    """The .onnx file that runtime onnxruntime serves for `weights` (a folder: its detector.onnx; a
    file: the .onnx of that name), refused when the detector.pt it was exported from has changed."""
    folder, path = (weights, weights / ONNX_FILE) if weights.is_dir() else (weights.parent, weights.with_suffix(".onnx"))
    if not path.is_file():
        raise FileNotFoundError(
            f"runtime onnxruntime serves {path}, which does not exist: "
            f"export it with `natix-miner export-onnx {folder}`, or set the tier's runtime to torch"
        )
    manifest = folder / MANIFEST
    exported = (yaml.safe_load(manifest.read_text()) or {}).get("onnx") if manifest.is_file() else None
    source = folder / (exported or {}).get("source", WEIGHTS_FILE)
    if exported and exported.get("file") == path.name and source.is_file() and file_sha256(source) != exported.get("source_sha256"):
        raise ValueError(
            f"{path} was exported from another {source.name} than the one beside it: "
            f"re-export it with `natix-miner export-onnx {folder}`"
        )
    return path


class UltralyticsYolo:
    """detector.pt through ultralytics' predictor in torch; detections as OnnxYolo gives them."""

    def __init__(self, weights: Path, image_size: int, min_confidence: float, device: str):
        YOLO = import_yolo()
        if weights.is_dir():
            weights = weights / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"detector weights {weights} do not exist")
        self.model = YOLO(str(weights), task="detect")
        self.names = {int(k): str(v) for k, v in self.model.names.items()}
        self.image_size, self.min_confidence, self.device = image_size, min_confidence, device

    def detect(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        results = self.model.predict(
            list(images), imgsz=self.image_size, conf=self.min_confidence, device=self.device, verbose=False,
        )
        return [
            [
                Detection(int(cls), float(confidence), tuple(box))
                for cls, confidence, box in zip(result.boxes.cls.tolist(), result.boxes.conf.tolist(), result.boxes.xyxy.tolist())
            ]
            for result in results
        ]


class DetectorTier(Tier):
    def __init__(
        self,
        weights: Path,
        name: str,
        device: str = "cpu",
        classes: dict[str, str] | None = None,
        min_confidence: float = 0.25,
        floor: float = 0.1,
        ceiling: float = 0.97,
        image_size: int = 224,
        runtime: str = "torch",
        threads: int | None = None,  # onnxruntime's intra-op threads; None: one per physical core
    ):
        self.name, self.device, self.runtime = name, device, runtime
        weights = Path(weights)
        if runtime == "onnxruntime":
            if device != "cpu":
                raise ValueError(f"runtime onnxruntime runs on the CPU; for {device} use runtime torch")
            self.model = OnnxYolo(onnx_weights(weights), image_size, min_confidence, threads)
        else:
            self.model = UltralyticsYolo(weights, image_size, min_confidence, device)
        names = self.model.names
        # Class name in the model -> roadwork category in explanations; default: every class counts.
        self.classes = classes or {n: n for n in names.values()}
        unknown = set(self.classes) - set(names.values())
        if unknown:
            raise ValueError(f"{weights}: classes {sorted(unknown)} are not among the model's {sorted(names.values())}")
        self.min_confidence, self.floor, self.ceiling, self.image_size = min_confidence, floor, ceiling, image_size
        self._lock = threading.Lock()

    def detections(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        """Per image, every box the model keeps, most confident first, in the pixels of the
        image_size square the frame was squashed to.

        Whole frames are squashed to image_size square first rather than letterboxed as ultralytics
        would: on 2000 v0.4 frames the shipped detector alone scores MCC 0.938 squashed, 0.877
        letterboxed, 0.929 centre-cropped (benchmarks/whole_frames.py; it learnt on squares)."""
        squares = [fit_square(image.convert("RGB"), self.image_size, "squash") for image in images]
        with self._lock:
            return self.model.detect(squares)

    def roadwork_detections(self, images: Sequence[Image.Image]) -> list[list[tuple[str, float, float, float]]]:
        """Per image: (category, confidence, x centre, square width) of each roadwork detection."""
        per_image = []
        for found in self.detections(images):
            per_image.append([
                (self.classes[self.model.names[d.class_id]], d.confidence, (d.box[0] + d.box[2]) / 2, float(self.image_size))
                for d in found
                if self.model.names[d.class_id] in self.classes
            ])
        return per_image

    def predict(self, images: Sequence[Image.Image]) -> list[TierOutput]:
        outputs = []
        for found in self.roadwork_detections(images):
            nothing = 1.0
            for _, confidence, _, _ in found:
                nothing *= 1.0 - confidence
            probability = self.floor + (self.ceiling - self.floor) * (1.0 - nothing)
            evidence = describe_detections([(c, x, w) for c, _, x, w in found])
            outputs.append(TierOutput(probability, evidence))
        return outputs

    def describe(self) -> str:
        return f"{self.name}: YOLO detector ({len(self.classes)} roadwork classes) on {self.device} ({self.runtime})"
