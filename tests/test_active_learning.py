import asyncio

import bittensor as bt
from PIL import Image

from cascade.engine import Cascade, Stage
from cascade.image import ImageLimits
from cascade.tier import Tier, TierOutput
from natix_miner.active_learning import UncertainStore
from natix_miner.forward import ForwardHandler
from natix_miner.protocol import ImageSynapse
from tests.payloads import b64, jpeg_bytes


def test_keeps_only_unsure_images_and_drops_the_oldest(tmp_path):
    store = UncertainStore(tmp_path / "u", margin=0.15, max_images=3)
    payload = b64(jpeg_bytes(seed=1))
    assert store.offer(payload, 0.9, now=1.0) is None and store.offer(payload, 0.2, now=2.0) is None
    kept = [store.offer(payload, p, now=10.0 + i) for i, p in enumerate((0.40, 0.55, 0.61, 0.45))]
    files = sorted(p.name for p in (tmp_path / "u").glob("*.jpg"))
    assert len(files) == 3 and kept[0].name not in files  # the oldest went first
    assert files[-1].endswith("-0.450.jpg")
    Image.open(tmp_path / "u" / files[0]).verify()  # the JPEG exactly as sent
    assert len(list(UncertainStore(tmp_path / "u", max_images=3)._kept)) == 3  # survives a restart


class Fixed(Tier):
    name = "fixed"

    def __init__(self, p):
        self.p = p

    def predict(self, images):
        return [TierOutput(self.p) for _ in images]


def test_the_forward_offers_its_unsure_answers(tmp_path):
    for probability, expected in ((0.52, 1), (0.97, 0)):
        folder = tmp_path / str(probability)
        handler = ForwardHandler(Cascade([Stage(Fixed(probability))]), ImageLimits(), 2.0, 0.5, 2, uncertain=UncertainStore(folder))
        synapse = ImageSynapse(image=b64(jpeg_bytes(seed=3)))
        synapse.dendrite = bt.TerminalInfo(hotkey="5V")
        asyncio.run(handler.forward(synapse))
        assert len(list(folder.glob("*.jpg"))) == expected
