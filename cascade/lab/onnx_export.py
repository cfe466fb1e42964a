"""`natix-miner export-onnx MODEL`: write a model folder's ONNX file from its torch weights, so
its tier serves with `runtime: onnxruntime` and no torch.

    natix-miner export-onnx builtin:yolo11n-roadwork              # rebuilds the shipped detector.onnx
    natix-miner export-onnx builtin:efficientnet-lite0-roadwork   # rebuilds the shipped classifier.onnx
    natix-miner export-onnx runs/detector                          # a folder `train-detector` or `train` wrote

A detector folder (detector.pt): ultralytics' own exporter traces the fused model (batch, height and
width left free, post-processing outside the graph: cascade/runtimes/onnx_yolo.py does it in numpy);
the only thing that changes between two exports of the same weights with the same torch and onnx
versions, the export date in the file's metadata, is dropped. A classifier folder (backbone and
head safetensors): torch's TorchScript exporter, batch free, the preprocessing left to numpy and
the calibration applied after the graph (so `calibrate` does not stale the file). Either way the
same weights give the same bytes, and the folder's manifest records how the file was made (`onnx:`):
opset, input size, the weights' sha256 (the tier refuses an .onnx older than its weights), the
versions and this command.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml

from ..config import BUILTIN_PREFIX, builtin_model_folder
from ..runtimes.onnx_cpu import OPSET, file_sha256
from ..tiers import classifier
from ..tiers.detector import MANIFEST, ONNX_FILE, WEIGHTS_FILE, import_yolo

DEFAULT_IMAGE_SIZE = 224
UNREPRODUCIBLE_METADATA = ("date",)


def model_folder(reference: str) -> Path:
    return builtin_model_folder(reference) if reference.startswith(BUILTIN_PREFIX) else Path(reference).expanduser()


def export_onnx(reference: str, log=print) -> Path:
    """Export `reference` (builtin:NAME or a folder) as its kind says: a detector or a classifier."""
    folder = model_folder(reference)
    if (folder / WEIGHTS_FILE).is_file():
        return export_detector_onnx(reference, log)
    if (folder / classifier.HEAD_FILE).is_file():
        return export_classifier_onnx(reference, log)
    raise FileNotFoundError(
        f"{folder} holds neither {WEIGHTS_FILE} (a detector) nor {classifier.HEAD_FILE} (a classifier): nothing to export"
    )


def export_classifier_onnx(reference: str, log=print) -> Path:
    """Export a classifier folder's torch weights to classifier.onnx beside them."""
    import onnx
    import torch

    from ..runtimes.onnx_cpu import torch_to_onnx
    from ..tiers.classifier_torch import load_classifier

    folder = model_folder(reference)
    model, manifest = load_classifier(folder)
    target = folder / classifier.ONNX_FILE
    target.write_bytes(torch_to_onnx(model, manifest.input_size))
    record = classifier.OnnxExport(
        sha256=file_sha256(target),
        sources={name: file_sha256(folder / name) for name in classifier.WEIGHT_FILES},
        opset=OPSET,
        input_size=manifest.input_size,
        exported_with=f"torch {torch.__version__.split('+')[0]}, onnx {onnx.__version__}",
        command=f"natix-miner export-onnx {reference}",
    )
    manifest_path = folder / classifier.MANIFEST
    raw = yaml.safe_load(manifest_path.read_text()) or {}
    raw["onnx"] = record.model_dump(mode="json")
    manifest_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    log(f"exported {target} ({target.stat().st_size / 1e6:.1f} MB, opset {OPSET}) and recorded it in {manifest_path}")
    return target


def export_detector_onnx(reference: str, log=print) -> Path:
    """Export `reference` (builtin:NAME or a folder holding detector.pt) to detector.onnx beside it."""
    import onnx
    import torch
    import ultralytics

    folder = model_folder(reference)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} holds no {WEIGHTS_FILE}: not a detector folder")
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
    parser.add_argument("model", help="builtin:NAME, a detector folder holding detector.pt (train-detector's --out) "
                                      "or a classifier folder holding backbone/head.safetensors (train's --out/model)")
