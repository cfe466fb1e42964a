"""An ultralytics YOLO detector as a tier: roadwork objects become evidence and a probability.

Detections whose class is mapped to a roadwork category (cones, barriers, signs, machinery,
workers ...) are combined by noisy-OR of their confidences, then squeezed into [floor, ceiling]:
seeing nothing is not proof of no roadwork (a crop can cut it out), and one box is not certainty.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from ..image import fit_square
from ..tier import Tier, TierOutput

WEIGHTS_FILE = "detector.pt"  # in a detector folder (what `natix-miner train-detector` writes, builtin:yolo11n-roadwork)


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
    try:
        from ultralytics import YOLO
        from ultralytics.utils import checks, patches
    except ImportError as exc:
        raise ImportError(f"the detector tier needs ultralytics ({exc}): pip install ultralytics") from None
    checks.AUTOINSTALL = False  # in case ultralytics was imported before this function ran
    Image.open = patches._image_open
    return YOLO

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
    ):
        YOLO = import_yolo()
        self.name, self.device = name, device
        weights = Path(weights)
        if weights.is_dir():
            weights = weights / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"detector weights {weights} do not exist")
        self.model = YOLO(str(weights), task="detect")
        names = self.model.names
        # Class name in the model -> roadwork category in explanations; default: every class counts.
        self.classes = classes or {str(n): str(n) for n in names.values()}
        unknown = set(self.classes) - {str(n) for n in names.values()}
        if unknown:
            raise ValueError(f"{weights}: classes {sorted(unknown)} are not among the model's {sorted(map(str, names.values()))}")
        self.min_confidence, self.floor, self.ceiling, self.image_size = min_confidence, floor, ceiling, image_size
        self._lock = threading.Lock()

    def roadwork_detections(self, images: Sequence[Image.Image]) -> list[list[tuple[str, float, float, float]]]:
        """Per image: (category, confidence, x centre, image width) of each roadwork detection.

        Whole frames are squashed to image_size square first rather than letterboxed as ultralytics
        would: on 2000 v0.4 frames the shipped detector alone scores MCC 0.938 squashed, 0.877
        letterboxed, 0.929 centre-cropped (benchmarks/whole_frames.py; it learnt on squares)."""
        squares = [fit_square(image.convert("RGB"), self.image_size, "squash") for image in images]
        with self._lock:
            results = self.model.predict(
                squares, imgsz=self.image_size, conf=self.min_confidence, device=self.device, verbose=False,
            )
        per_image = []
        for image, result in zip(squares, results):
            found = []
            for cls, confidence, box in zip(result.boxes.cls.tolist(), result.boxes.conf.tolist(), result.boxes.xyxy.tolist()):
                category = self.classes.get(str(result.names[int(cls)]))
                if category is not None:
                    found.append((category, float(confidence), (box[0] + box[2]) / 2, float(image.width)))
            per_image.append(found)
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
        return f"{self.name}: YOLO detector ({len(self.classes)} roadwork classes) on {self.device}"
