"""Run an image model through ONNX Runtime on the CPU: an exported .onnx file or its bytes
(`cpu_session`, which needs no torch), and the one way a torch image model becomes such bytes
(`torch_to_onnx`, the train extra).

On 2 CPU cores ONNX Runtime runs the EfficientNet-Lite0 model 3.6x faster than eager torch
(channels_last, batch 8), the whole tier with its preprocessing 2.4x (benchmarks/README.md), with
the same float32 answers: it folds batch norms into convolutions and fuses activations, which eager
torch does not.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from . import RuntimeUnavailable

if TYPE_CHECKING:
    import torch

OPSET = 17


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cpu_session(model: bytes | str, threads: int | None = None):
    """An ONNX Runtime CPU session for a serialized model or a .onnx path; `threads` None: ONNX
    Runtime's default (one per physical core)."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeUnavailable(
            "runtime onnxruntime needs the onnxruntime package (pip install onnxruntime), "
            "or set the tier's runtime to torch"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: the miner runs two sessions and its event loop on
    # few cores, and spinning threads starve the others. On a busy 2-core box (load 4) this took the
    # detector tier from 20.7 to 10.7 ms per image at batch 1, lite0 from 11.9 to 8.1, at batch 8
    # 17.2 -> 9.6 and 6.3 -> 6.2 (benchmarks/README.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def torch_to_onnx(model: torch.nn.Module, input_size: int) -> bytes:
    """`model` (pixels N x 3 x size x size -> one logit each) as ONNX bytes, the batch size free.

    TorchScript's exporter: the same weights and versions give the same bytes (no date, no random
    names), so a shipped file can be rebuilt and compared byte for byte."""
    import torch

    buffer = io.BytesIO()
    example = torch.zeros(2, 3, input_size, input_size)
    with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation on every call
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), example, buffer, input_names=["pixels"], output_names=["logits"],
            dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False, opset_version=OPSET,
        )
    return buffer.getvalue()
