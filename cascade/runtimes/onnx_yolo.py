"""A YOLO detector exported to ONNX (`natix-miner export-onnx`), served by ONNX Runtime with numpy
around it: no torch, no ultralytics, no OpenCV in the serving process.

The steps around the graph mirror what ultralytics' predictor does for a torch model, so both
runtimes find the same boxes (tests/test_detector_onnx.py checks it on the shipped weights):
  - letterbox: keep the aspect ratio, scale the longer side to `image_size` (bilinear with
    half-pixel centres, as OpenCV's INTER_LINEAR), pad with grey 114 to the next multiple of the
    stride, centred;
  - the graph gives, per anchor, a centre-size box in input pixels and one sigmoid score per class;
  - keep each anchor's best class above `min_confidence`, greedy NMS per class at IoU 0.7, at
    most 300 boxes, most confident first; undo the letterbox and clip to the image.
One difference on purpose: images of different shapes in a batch each keep their own minimal
rectangle (ultralytics pads them all to a square then), so an image's answer never depends on
which other images shared its batch.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .onnx_cpu import cpu_session

PAD_VALUE = 114
IOU_THRESHOLD = 0.7  # ultralytics' predict default
MAX_DETECTIONS = 300
CLASS_OFFSET = 7680.0  # shifts each class's boxes apart, so one NMS pass never suppresses across classes


@dataclass(frozen=True)
class Detection:
    class_id: int
    confidence: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the original image's pixels


@dataclass(frozen=True)
class Letterboxed:
    pixels: np.ndarray  # (height, width, 3) uint8, RGB
    gain: tuple[float, float]  # x, y: input pixels per original pixel
    pad: tuple[int, int]  # left, top
    original: tuple[int, int]  # width, height


def resize_bilinear(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, C) uint8 resized like OpenCV's INTER_LINEAR: half-pixel centres, no antialiasing
    (PIL's bilinear widens its filter when shrinking, which would give the model other pixels)."""

    def taps(size_out: int, size_in: int):
        source = np.maximum((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0.0)
        low = np.minimum(np.floor(source).astype(np.int64), size_in - 1)
        return low, np.minimum(low + 1, size_in - 1), (source - low).astype(np.float32)

    y0, y1, fy = taps(height, pixels.shape[0])
    x0, x1, fx = taps(width, pixels.shape[1])
    image = pixels.astype(np.float32)
    rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def letterbox(image: Image.Image, size: int, stride: int) -> Letterboxed:
    pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    scale = min(size / height, size / width)
    new_width, new_height = max(round(width * scale), 1), max(round(height * scale), 1)
    if (new_width, new_height) != (width, height):
        pixels = resize_bilinear(pixels, new_width, new_height)
    pad_x, pad_y = (size - new_width) % stride / 2, (size - new_height) % stride / 2
    left, right, top, bottom = round(pad_x - 0.1), round(pad_x + 0.1), round(pad_y - 0.1), round(pad_y + 0.1)
    padded = np.full((new_height + top + bottom, new_width + left + right, 3), PAD_VALUE, dtype=np.uint8)
    padded[top:top + new_height, left:left + new_width] = pixels
    return Letterboxed(padded, (new_width / width, new_height / height), (left, top), (width, height))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices kept by greedy NMS, most confident first; a box goes when its IoU with a kept one
    exceeds the threshold (torchvision's rule)."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        width = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        height = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = width * height
        order = rest[inter / (areas[best] + areas[rest] - inter) <= iou_threshold]
    return keep


def detections(output: np.ndarray, boxed: Letterboxed, min_confidence: float) -> list[Detection]:
    """One image's graph output (4 + classes, anchors) -> its detections in original pixels."""
    scores = output[4:]
    class_ids = scores.argmax(0)
    confidence = scores.max(0)
    chosen = confidence > min_confidence
    centre_size, class_ids, confidence = output[:4, chosen].T, class_ids[chosen], confidence[chosen]
    if not len(confidence):
        return []
    half = centre_size[:, 2:] / 2
    boxes = np.concatenate([centre_size[:, :2] - half, centre_size[:, :2] + half], axis=1)
    keep = nms(boxes + (class_ids * np.float32(CLASS_OFFSET))[:, None], confidence, IOU_THRESHOLD)[:MAX_DETECTIONS]
    (gain_x, gain_y), (left, top), (width, height) = boxed.gain, boxed.pad, boxed.original
    found = []
    for i in keep:
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        box = (
            min(max((x1 - left) / gain_x, 0.0), width), min(max((y1 - top) / gain_y, 0.0), height),
            min(max((x2 - left) / gain_x, 0.0), width), min(max((y2 - top) / gain_y, 0.0), height),
        )
        found.append(Detection(int(class_ids[i]), float(confidence[i]), box))
    return found


class OnnxYolo:
    """A `detector.onnx` written by `natix-miner export-onnx`: its class names and stride travel in
    the file's metadata (ultralytics' exporter writes them there)."""

    def __init__(self, path: Path, image_size: int, min_confidence: float, threads: int | None = None):
        self.session = cpu_session(str(path), threads)
        metadata = self.session.get_modelmeta().custom_metadata_map
        if "names" not in metadata:
            raise ValueError(f"{path} carries no class names: export it with `natix-miner export-onnx FOLDER`")
        names = ast.literal_eval(metadata["names"])  # "{0: 'cone', 1: 'barrier', ...}"
        self.names = {int(k): str(v) for k, v in names.items()}
        self.stride = int(metadata.get("stride", 32))
        self.input_name = self.session.get_inputs()[0].name
        self.image_size, self.min_confidence = image_size, min_confidence

    def detect(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        boxed = [letterbox(image, self.image_size, self.stride) for image in images]
        results: list[list[Detection]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, item in enumerate(boxed):
            by_shape.setdefault(item.pixels.shape, []).append(i)
        for indices in by_shape.values():  # one run per input shape: the graph takes any H x W, one per batch
            batch = np.stack([boxed[i].pixels for i in indices]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            # ONNX Runtime releases the GIL while it runs: the event loop keeps decoding meanwhile.
            outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0]
            for i, output in zip(indices, outputs):
                results[i] = detections(output, boxed[i], self.min_confidence)
        return results
