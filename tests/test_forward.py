import asyncio
import math
import threading
import time

import bittensor as bt
import pytest

from cascade.engine import Cascade, Stage
from cascade.image import ImageLimits
from cascade.tier import Tier, TierOutput
from natix_miner.serving.forward import ForwardHandler
from natix_miner.serving.protocol import ExtendedImageSynapse, ImageSynapse
from tests.payloads import b64, jpeg_bytes


class ScriptedTier(Tier):
    name = "scripted"

    def __init__(self, probability=0.8, delay_s=0.0, error=None):
        self.probability, self.delay_s, self.error = probability, delay_s, error
        self.release = threading.Event()

    def predict(self, images):
        if self.delay_s:
            self.release.wait(self.delay_s)
        if self.error:
            raise self.error
        return [TierOutput(self.probability, "3 cones on the right") for _ in images]


def handler(tier, deadline_s=2.0, fallback=0.5, workers=2):
    return ForwardHandler(Cascade([Stage(tier)]), ImageLimits(), deadline_s, fallback, workers, model_url="me/model")


def request(cls=ImageSynapse, payload=None):
    synapse = cls(image=payload if payload is not None else b64(jpeg_bytes(seed=1)))
    synapse.dendrite = bt.TerminalInfo(hotkey="5Validator")
    return synapse


def run(coro):
    return asyncio.run(coro)


def test_answers_the_cascade_probability():
    answered = run(handler(ScriptedTier(0.8)).forward(request()))
    assert answered.prediction == pytest.approx(0.8)


def test_extended_synapse_explains_positives_only():
    positive = run(handler(ScriptedTier(0.8)).forward(request(ExtendedImageSynapse)))
    assert positive.explanation == "3 cones on the right" and positive.model_url == "me/model"
    negative = run(handler(ScriptedTier(0.3)).forward(request(ExtendedImageSynapse)))
    assert negative.explanation == "" and negative.prediction == pytest.approx(0.3)


@pytest.mark.parametrize("raw, expected", [(1.7, 1.0), (-0.4, 0.0)])
def test_out_of_range_is_clamped(raw, expected):
    prediction = run(handler(ScriptedTier(raw)).forward(request())).prediction
    assert 0.0 <= prediction <= 1.0 and prediction == pytest.approx(expected, abs=1e-5)


def test_nan_and_exceptions_answer_the_fallback():
    h = handler(ScriptedTier(math.nan), fallback=0.4)
    assert run(h.forward(request())).prediction == 0.4
    h2 = handler(ScriptedTier(error=RuntimeError("CUDA fell over")), fallback=0.4)
    assert run(h2.forward(request())).prediction == 0.4
    assert h.outcomes["no_answer"] == 1 and h2.outcomes["no_answer"] == 1


def test_bad_image_answers_the_fallback_and_drops_the_payload():
    h = handler(ScriptedTier(0.9))
    answered = run(h.forward(request(payload="%%% not base64")))
    assert answered.prediction == 0.5 and answered.image == ""
    assert h.outcomes["rejected:bad_base64"] == 1


def test_a_stuck_tier_still_answers_by_the_deadline():
    tier = ScriptedTier(0.9, delay_s=30)
    h = handler(tier, deadline_s=0.3)
    started = time.perf_counter()
    answered = run(h.forward(request()))
    elapsed = time.perf_counter() - started
    tier.release.set()
    assert answered.prediction == 0.5 and h.outcomes["no_answer"] == 1  # the cascade gave up in time
    assert elapsed < 1.0


def test_concurrent_requests_do_not_block_the_event_loop():
    tier = ScriptedTier(0.9, delay_s=0.2)
    h = handler(tier, workers=4)

    async def burst():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        answers = await asyncio.gather(*(h.forward(request()) for _ in range(4)))
        ticking.cancel()
        return answers, ticks

    answers, ticks = run(burst())
    assert all(a.prediction == pytest.approx(0.9) for a in answers)
    assert ticks >= 10  # the loop kept running while the tiers worked in threads


def test_budget_follows_the_callers_timeout():
    h = handler(ScriptedTier(0.9), deadline_s=6.5)
    assert h.budget_s(9.0) == 6.5  # validators wait 9 s: the configured deadline fits
    assert h.budget_s(3.0) == pytest.approx(1.5)  # a caller in a hurry gets an answer it will still read
    assert h.budget_s(None) == 6.5 and h.budget_s(0.5) == pytest.approx(0.2)


def test_a_short_client_timeout_shortens_the_deadline():
    tier = ScriptedTier(0.9, delay_s=30)
    h = handler(tier, deadline_s=6.5)
    synapse = request()
    synapse.timeout = 2.0
    started = time.perf_counter()
    answered = run(h.forward(synapse))
    tier.release.set()
    assert answered.prediction == 0.5 and time.perf_counter() - started < 1.5


def test_one_caller_with_heavy_images_cannot_queue_another_callers_answers():
    """Issue 17, item 5: eight concurrent heavy images from one validator pushed another's answers
    from 20 ms to 5-6 s. No caller holds more than half the workers."""

    class SlowOnBigImages(Tier):
        name = "size-bound"

        def predict(self, images):
            if images[0].size[0] > 300:
                time.sleep(1.0)  # a heavy decode and inference
            return [TierOutput(0.3, "") for _ in images]

    forward = handler(SlowOnBigImages(), deadline_s=8.0, workers=4)
    heavy, light = b64(jpeg_bytes(seed=2, size=448)), b64(jpeg_bytes(seed=3))

    async def scenario():
        flood = [asyncio.create_task(forward.answer(heavy, caller="5Heavy")) for _ in range(8)]
        await asyncio.sleep(0.1)  # the heavy caller's requests are all in
        started = time.perf_counter()
        quiet = await forward.answer(light, caller="5Quiet")
        waited = time.perf_counter() - started
        await asyncio.gather(*flood)
        return quiet, waited

    quiet, waited = run(scenario())
    assert quiet.outcome == "ok" and waited < 0.5, waited  # not behind the heavy caller's 2 s of queue
