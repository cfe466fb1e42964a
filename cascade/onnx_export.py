"""`natix-miner export-onnx MODEL`: write a detector folder's `detector.onnx` from its `detector.pt`,
so the tier can serve with `runtime: onnxruntime` and no torch.

    natix-miner export-onnx builtin:yolo11n-roadwork     # rebuilds the shipped detector.onnx
    natix-miner export-onnx runs/detector                 # a folder `train-detector` wrote

ultralytics' own exporter traces the fused model (batch, height and width left free, post-processing
outside the graph: cascade/runtimes/onnx_yolo.py does it in numpy). The only thing that changes
between two exports of the same weights with the same torch and onnx versions, the export date in
the file's metadata, is dropped: the same checkpoint gives the same bytes. The folder's manifest
records how the file was made (`onnx:`): opset, trace size, the checkpoint's sha256 (the tier
refuses a detector.onnx older than its detector.pt), the versions and this command.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml

from .config import BUILTIN_PREFIX, builtin_model_folder
from .tiers.detector import MANIFEST, ONNX_FILE, WEIGHTS_FILE, file_sha256, import_yolo

OPSET = 17  # what the classifier's in-memory export uses too (runtimes/onnx_cpu.py)
DEFAULT_IMAGE_SIZE = 224
UNREPRODUCIBLE_METADATA = ("date",)


def model_folder(reference: str) -> Path:
    return builtin_model_folder(reference) if reference.startswith(BUILTIN_PREFIX) else Path(reference).expanduser()


def export_detector_onnx(reference: str, log=print) -> Path:
    """Export `reference` (builtin:NAME or a folder holding detector.pt) to detector.onnx beside it."""
    import onnx
    import torch
    import ultralytics

    folder = model_folder(reference)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        kind = " (a classifier folder: its runtime onnxruntime exports it in memory at load)" if (folder / "head.safetensors").is_file() else ""
        raise FileNotFoundError(f"{folder} holds no {WEIGHTS_FILE}{kind}: export-onnx exports YOLO detector folders")
    manifest_path = folder / MANIFEST
    manifest = (yaml.safe_load(manifest_path.read_text()) or {}) if manifest_path.is_file() else {"format": "natix-detector/1"}
    image_size = int(manifest.get("image_size", DEFAULT_IMAGE_SIZE))
    YOLO = import_yolo()
    chatter = logging.getLogger("ultralytics")  # its exporter prints `yolo predict ...` hints meant for its own CLI
    level = chatter.level
    chatter.setLevel(logging.WARNING)
    try:
        written = Path(YOLO(str(weights), task="detect").export(
            format="onnx", imgsz=image_size, dynamic=True, simplify=False, opset=OPSET, device="cpu", verbose=False,
        ))
    finally:
        chatter.setLevel(level)
    graph = onnx.load(str(written))
    kept = [p for p in graph.metadata_props if p.key not in UNREPRODUCIBLE_METADATA]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    target = folder / ONNX_FILE
    onnx.save(graph, str(target))
    if written.resolve() != target.resolve():
        written.unlink()
    manifest["onnx"] = {
        "file": ONNX_FILE,
        "sha256": file_sha256(target),
        "source": WEIGHTS_FILE,
        "source_sha256": file_sha256(weights),
        "opset": OPSET,
        "image_size": image_size,  # traced at this size; batch, height and width are free
        "dynamic_axes": ["batch", "height", "width"],
        "exported_with": f"ultralytics {ultralytics.__version__}, torch {torch.__version__.split('+')[0]}, onnx {onnx.__version__}",
        "command": f"natix-miner export-onnx {reference}",
    }
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    log(f"exported {target} ({target.stat().st_size / 1e6:.1f} MB, opset {OPSET}) and recorded it in {manifest_path}")
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="builtin:NAME or a detector folder holding detector.pt (train-detector's --out)")
