import asyncio

import bittensor as bt
import io

import numpy as np
from PIL import Image

from cascade.engine import Cascade, Stage
from cascade.image import ImageLimits
from cascade.tier import Tier, TierOutput
from cascade.lab.datasets import open_labelled
from natix_miner.serving.active_learning import HarvestStore, UncertainStore
from natix_miner.serving.forward import ForwardHandler
from natix_miner.serving.protocol import ImageSynapse
from tests.payloads import b64, jpeg_bytes


def test_keeps_only_unsure_images_and_drops_the_oldest(tmp_path):
    store = UncertainStore(tmp_path / "u", margin=0.15, max_images=3)
    payload = b64(jpeg_bytes(seed=1))
    assert store.offer(payload, 0.9, now=1.0) is None and store.offer(payload, 0.2, now=2.0) is None
    kept = [store.offer(payload, p, now=10.0 + i) for i, p in enumerate((0.40, 0.55, 0.61, 0.45))]
    files = sorted(p.name for p in (tmp_path / "u").glob("*.jpg"))
    assert len(files) == 3 and kept[0].name not in files  # the oldest went first
    assert files[-1].endswith("-0.450.jpg")
    Image.open(tmp_path / "u" / files[0]).verify()  # a JPEG, as the miner decoded and re-encoded it
    assert len(UncertainStore(tmp_path / "u", max_images=3).store) == 3  # survives a restart


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


def small_jpeg(seed: int, padding: int = 0) -> str:
    """A 64x64 JPEG, optionally with `padding` bytes after its end marker (decoders ignore them)."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return b64(buffer.getvalue() + b"\0" * padding)


def test_padded_near_threshold_images_stay_within_the_byte_budget(tmp_path):
    # Issue 17 item 6: each answer near 0.5 kept the caller's bytes, 256 KiB of padding included.
    budget = 1024 * 1024
    store = UncertainStore(tmp_path / "u", margin=0.15, max_images=5000, max_bytes=budget)
    for i in range(400):  # 100 MiB offered
        assert store.offer(small_jpeg(i % 8, padding=256 * 1024), 0.5, now=1000.0 + i) is not None
    on_disk = [p.stat().st_size for p in (tmp_path / "u").rglob("*.jpg")]
    assert sum(on_disk) == store.store.bytes <= budget
    assert max(on_disk) < 20 * 1024  # the image, re-encoded; never its padding
    assert len(on_disk) == len(store.store) and len(on_disk) > 50  # the newest kept, not nothing
    smaller = UncertainStore(tmp_path / "u", max_bytes=budget // 4)  # a restart under a smaller budget
    assert sum(p.stat().st_size for p in (tmp_path / "u").rglob("*.jpg")) == smaller.store.bytes <= budget // 4


def test_harvest_keeps_labelled_images_where_train_reads_them_within_its_bound(tmp_path):
    folder = tmp_path / "harvest"
    first = small_jpeg(0)
    store = HarvestStore(folder, max_bytes=10 * 1024 * 1024)
    kept = [store.offer(small_jpeg(i), label, 0.4, now=100.0 + i) for i, label in enumerate([1, 0, 1, -1, 0, 1])]
    assert kept[3] is None and store.offer("not base64!", 1, 0.4) is None  # no label, no image: nothing kept
    assert sorted(p.parent.name for p in folder.rglob("*.jpg")) == ["none", "none", "roadwork", "roadwork", "roadwork"]
    data = open_labelled(str(folder), heldout_fraction=0.0)
    assert len(data) == 5 and sorted(label for _, label in data.items) == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert np.asarray(Image.open(kept[0])).shape == (64, 64, 3)

    one = kept[0].stat().st_size
    bounded = HarvestStore(folder, max_bytes=3 * one + one // 2)  # room for three: the two oldest go
    assert not kept[0].exists() and not kept[1].exists() and kept[5].exists()
    for i in range(20):
        bounded.offer(first, i % 2, 0.5, now=200.0 + i)
    sizes = [p.stat().st_size for p in folder.rglob("*.jpg")]
    assert sum(sizes) <= 3 * one + one // 2 and len(sizes) == 3


def test_the_forward_harvests_testnet_labels(tmp_path):
    handler = ForwardHandler(Cascade([Stage(Fixed(0.97))]), ImageLimits(), 2.0, 0.5, 2, harvest=HarvestStore(tmp_path / "h", 1 << 20))
    for label in (1, 0, -1):
        synapse = ImageSynapse(image=b64(jpeg_bytes(seed=3)), testnet_label=label)
        synapse.dendrite = bt.TerminalInfo(hotkey="5V")
        asyncio.run(handler.forward(synapse))
    assert sorted(p.parent.name for p in (tmp_path / "h").rglob("*.jpg")) == ["none", "roadwork"]
    assert handler.last_request_at is not None
