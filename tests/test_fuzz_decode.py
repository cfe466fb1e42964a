"""Property-based fuzzing of what a request can carry: whatever arrives, decoding either yields an
RGB image within the limits or raises ImageRejected, and the forward answers a valid probability."""

import asyncio
import base64

import bittensor as bt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascade.engine import Cascade, Stage
from cascade.image import ImageLimits, ImageRejected, decode_base64_image, decode_image_bytes
from cascade.tier import Tier, TierOutput
from natix_miner.serving.forward import ForwardHandler
from natix_miner.serving.protocol import ImageSynapse
from tests.payloads import jpeg_bytes, png_bomb

LIMITS = ImageLimits(max_payload_bytes=200_000, max_pixels=1_000_000)
SEEDS = [jpeg_bytes(seed=1, size=64), png_bomb(3000, 3000), base64.b64decode(base64.b64encode(b"BM" + b"\0" * 60))]


def check(decode):
    try:
        image = decode()
    except ImageRejected:
        return
    assert image.mode == "RGB" and image.width * image.height <= LIMITS.max_pixels


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_payload(text):
    check(lambda: decode_base64_image(text, LIMITS))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.integers(min_value=0, max_value=2000), st.binary(max_size=64), st.integers(0, 255))
def test_mutated_images(seed, position, insert, flip):
    data = bytearray(seed)
    if data:
        index = position % len(data)
        data[index] ^= flip  # one corrupted byte
        data[index:index] = insert  # and some junk spliced in
    check(lambda: decode_image_bytes(bytes(data), LIMITS))


class Half(Tier):
    name = "half"

    def predict(self, images):
        return [TierOutput(0.75) for _ in images]


HANDLER = ForwardHandler(Cascade([Stage(Half())], cache_size=0), LIMITS, 2.0, 0.5, 2)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())))
def test_forward_always_answers_a_valid_probability(payload):
    synapse = ImageSynapse(image=payload)
    synapse.dendrite = bt.TerminalInfo(hotkey="5Validator")
    answered = asyncio.run(HANDLER.forward(synapse))
    assert 0.0 <= answered.prediction <= 1.0
