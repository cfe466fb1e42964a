"""The one interface every cascade tier implements: a batch of images in, one output per image."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class TierOutput:
    probability: float  # P(roadwork) in [0, 1]
    evidence: str = ""  # what the tier saw, in words; empty when it cannot say


class Tier(abc.ABC):
    """A model that scores images. Implementations must be safe to call from several threads."""

    name: str

    @abc.abstractmethod
    def predict(self, images: Sequence[Image.Image]) -> list[TierOutput]:
        """Score each image; the result has one entry per input, in order."""

    def describe(self) -> str:
        """One line for logs and the model card: what this tier is."""
        return self.name
