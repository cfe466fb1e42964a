"""Which quantized formats the build device can calibrate, and a clear refusal when it cannot.

FP8 (weights and KV cache) needs compute capability >= 8.9 (Ada, Hopper, Blackwell) to serve.
NVFP4 is a Blackwell format (>= 10.0). ModelOpt calibrates FP8 on the CPU too (fake quantization,
used by the CPU recipe and the tests), but its NVFP4 calibration needs a CUDA device ("amax must
be a CUDA tensor"). Building NVFP4 on Hopper to serve on Blackwell is allowed only when asked for
(`--cross-build`): the checkpoint is then never run where it was built.
"""

from __future__ import annotations

from dataclasses import dataclass

FP8_MIN_CC = (8, 9)
NVFP4_MIN_CC = (10, 0)


class BuildRefused(RuntimeError):
    """The device cannot build the recipe's formats; the message names device, format and alternative."""


@dataclass(frozen=True)
class BuildDevice:
    kind: str  # "cpu" or "cuda"
    name: str
    compute_capability: tuple[int, int] | None = None

    @property
    def torch_device(self) -> str:
        return "cuda" if self.kind == "cuda" else "cpu"

    def describe(self) -> str:
        if self.compute_capability is None:
            return self.name
        major, minor = self.compute_capability
        return f"{self.name} (compute capability {major}.{minor})"


def detect(wanted: str = "auto") -> BuildDevice:
    """The device a build runs on: `auto` takes the first CUDA GPU when there is one."""
    import torch

    if wanted not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {wanted!r}")
    if wanted == "cpu" or (wanted == "auto" and not torch.cuda.is_available()):
        return BuildDevice("cpu", "CPU")
    if not torch.cuda.is_available():
        raise BuildRefused("the recipe asks for device: cuda, but torch sees no CUDA GPU on this machine")
    return BuildDevice("cuda", torch.cuda.get_device_name(0), tuple(torch.cuda.get_device_capability(0)))


def check_formats(device: BuildDevice, weights: str, kv_cache: str, cross_build: bool = False) -> list[str]:
    """Raise BuildRefused when `device` cannot build these formats; return warnings otherwise."""
    formats = {"weights": weights, "KV cache": kv_cache}
    nvfp4 = [part for part, fmt in formats.items() if fmt == "nvfp4"]
    fp8 = [part for part, fmt in formats.items() if fmt == "fp8"]
    cc = device.compute_capability
    warnings: list[str] = []
    if nvfp4:
        what = f"NVFP4 {' and '.join(nvfp4)}"
        if device.kind == "cpu":
            raise BuildRefused(
                f"{what} cannot be built on {device.describe()}: ModelOpt calibrates NVFP4 only on a CUDA GPU, "
                "and NVFP4 is served only on Blackwell (compute capability >= 10.0). "
                "Alternative: weights: fp8 and kv_cache: fp8 (served on compute capability >= 8.9), or build on a Blackwell GPU."
            )
        if cc < NVFP4_MIN_CC and not cross_build:
            raise BuildRefused(
                f"{what} needs a Blackwell GPU (compute capability >= 10.0); this is {device.describe()}. "
                "Alternative: weights: fp8 and kv_cache: fp8 (the Hopper recipe), or --cross-build to "
                "calibrate here a checkpoint that only a Blackwell GPU will serve."
            )
        if cc < NVFP4_MIN_CC:
            warnings.append(f"cross-build: {what} calibrated on {device.describe()}; serve it on Blackwell only")
    if fp8 and device.kind == "cuda" and cc < FP8_MIN_CC:
        raise BuildRefused(
            f"FP8 {' and '.join(fp8)} need compute capability >= 8.9 (Ada, Hopper, Blackwell); "
            f"this is {device.describe()}. Alternative: weights: none and kv_cache: none (bf16), or build on a newer GPU."
        )
    if fp8 and device.kind == "cpu":
        warnings.append("FP8 calibrated on the CPU (fake quantization); serve it on compute capability >= 8.9")
    return warnings
