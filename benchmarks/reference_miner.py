"""What SN72 operators run today, for side-by-side benchmarks: the reference miner's inference path
(a transformers image-classification pipeline called synchronously inside the async forward, one
image at a time, P = score of the "Roadwork" label), behind the same axon, guard and local chain as
ours so that only the inference path differs.

    python benchmarks/reference_miner.py --reference-model DIR [miner flags as neurons/miner.py]
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bittensor as bt  # noqa: E402
from PIL import Image  # noqa: E402

from natix_miner.serving import neuron  # noqa: E402
from natix_miner.serving.protocol import ImageSynapse  # noqa: E402


class ReferenceHandler:
    def __init__(self, model_dir: str):
        from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline

        self.pipeline = pipeline(
            "image-classification",
            model=AutoModelForImageClassification.from_pretrained(model_dir),
            image_processor=AutoImageProcessor.from_pretrained(model_dir),
        )
        self.outcomes: Counter[str] = Counter()

    async def forward(self, synapse: ImageSynapse) -> ImageSynapse:
        try:  # blocking on purpose: this is what the reference does inside its async forward
            image = Image.open(io.BytesIO(base64.b64decode(synapse.image)))
            scores = {item["label"]: item["score"] for item in self.pipeline(image)}
            synapse.prediction = scores["Roadwork"]
            self.outcomes["ok"] += 1
        except Exception as exc:
            bt.logging.error(f"Error performing inference: {exc}")
            self.outcomes["error"] += 1
        return synapse

    def shutdown(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--reference-model", required=True)
    known, rest = parser.parse_known_args()

    class ReferenceMiner(neuron.Miner):
        def _load_cascade(self):
            return ReferenceHandler(known.reference_model)

    neuron.Miner = ReferenceMiner  # main() builds whatever neuron.Miner is
    return neuron.main(rest)


if __name__ == "__main__":
    sys.exit(main())
