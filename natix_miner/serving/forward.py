"""Answer one validator request: decode, score off the event loop, always reply in time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cascade.engine import Cascade, CascadeResult, NoAnswer
from cascade.image import ImageLimits, ImageRejected

from .logs import logger, short_hotkey
from .protocol import ExtendedImageSynapse, ImageSynapse


# Time kept back from the caller's own timeout for the HTTP stack and the network on both ends.
CLIENT_MARGIN_S = 1.5
MIN_BUDGET_S = 0.2
CASCADE_SHARE = 0.9  # of the budget the cascade may spend before answering with what it has
DETAIL_CHARS = 160  # of an error's text in the request line: never room for a payload
LEVELS = {"ok": "INFO", "rejected": "WARNING", "no_answer": "WARNING", "deadline": "WARNING", "error": "ERROR"}


@dataclass(frozen=True)
class Answer:
    prediction: float
    explanation: str
    outcome: str  # "ok", "no_answer" (no tier in time), "deadline", "error", or "rejected:<reason>"
    settled_by: str
    latency_ms: float
    tier_ms: dict[str, float] = field(default_factory=dict)
    detail: str = ""  # why, when the outcome is not "ok"


class ForwardHandler:
    def __init__(
        self,
        cascade: Cascade,
        limits: ImageLimits,
        deadline_s: float,
        fallback_probability: float,
        workers: int,
        model_url: str = "",
        journal=None,
        metrics=None,
        uncertain=None,
        harvest=None,
    ):
        self.cascade = cascade
        self.limits = limits
        self.deadline_s = deadline_s
        self.fallback = fallback_probability
        self.model_url = model_url
        # Requests wait for a free worker here, never on the event loop.
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cascade")
        # No caller may hold more than half the workers: one validator sending heavy images (16 MP
        # PNGs, at its allowed rate) must not queue another's answers behind them.
        self.per_caller = max(1, workers // 2)
        self._caller_slots: dict[str, asyncio.Semaphore] = {}  # registered validators only: bounded
        self.outcomes: Counter[str] = Counter()
        self.journal = journal  # natix_miner.serving.journal.RequestJournal, or None
        self.metrics = metrics  # natix_miner.serving.metrics.MinerMetrics, or None
        self.uncertain = uncertain  # natix_miner.serving.active_learning.UncertainStore, or None
        self.harvest = harvest  # natix_miner.serving.active_learning.HarvestStore (testnet labels), or None
        self.last_request_at: float | None = None  # unix time of the latest validator request answered

    def _score(self, payload: str, deadline: float) -> CascadeResult:
        return self.cascade.predict_payload(payload, self.limits, deadline)

    def budget_s(self, client_timeout_s: float | None) -> float:
        """The configured deadline, shortened when the caller will not wait that long."""
        if not client_timeout_s or client_timeout_s <= 0:
            return self.deadline_s
        return max(MIN_BUDGET_S, min(self.deadline_s, client_timeout_s - CLIENT_MARGIN_S))

    async def _scored(self, payload: str, cascade_deadline: float, caller: str | None) -> CascadeResult:
        key = caller or "?"
        slot = self._caller_slots.get(key) or self._caller_slots.setdefault(key, asyncio.Semaphore(self.per_caller))
        async with slot:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._score, payload, cascade_deadline)

    async def answer(self, payload: str, budget_s: float | None = None, caller: str | None = None) -> Answer:
        started = time.perf_counter()
        tier_ms: dict[str, float] = {}
        detail = ""
        budget_s = self.deadline_s if budget_s is None else budget_s
        # The cascade stops itself a little early and answers with what it has; the outer timeout
        # is the backstop for time lost before it starts (a queue of requests, a slow decode).
        cascade_deadline = time.monotonic() + CASCADE_SHARE * budget_s
        try:
            result = await asyncio.wait_for(self._scored(payload, cascade_deadline, caller), timeout=budget_s)
            prediction = result.probability  # finite and within [0, 1]: the cascade guarantees it
            outcome, explanation, tier_ms = "ok", result.explanation, result.tier_ms
            settled_by = "cache" if result.cached else result.settled_by
        except ImageRejected as exc:
            prediction, explanation, outcome, settled_by, detail = self.fallback, "", f"rejected:{exc.reason}", "-", str(exc)
        except NoAnswer as exc:
            prediction, explanation, outcome, settled_by, detail = self.fallback, "", "no_answer", "-", str(exc)
        except asyncio.TimeoutError:
            detail = f"cascade missed the {budget_s:.1f}s deadline"
            prediction, explanation, outcome, settled_by = self.fallback, "", "deadline", "-"
        except Exception as exc:
            detail = f"cascade failed: {type(exc).__name__}: {exc}"
            prediction, explanation, outcome, settled_by = self.fallback, "", "error", "-"
        self.outcomes[outcome] += 1
        latency_ms = (time.perf_counter() - started) * 1000.0
        return Answer(prediction, explanation, outcome, settled_by, latency_ms, tier_ms, detail)

    async def forward(self, synapse: ImageSynapse) -> ImageSynapse:
        self.last_request_at = time.time()
        payload_chars = len(synapse.image or "")
        caller = synapse.dendrite.hotkey if synapse.dendrite is not None else "?"
        answer = await self.answer(synapse.image, self.budget_s(synapse.timeout), caller)
        image = synapse.image
        synapse.prediction = answer.prediction
        if answer.outcome.startswith("rejected"):
            synapse.image = ""  # do not echo garbage back
        if isinstance(synapse, ExtendedImageSynapse):
            synapse.model_url = self.model_url
            synapse.explanation = answer.explanation if answer.prediction > 0.5 else ""
        # Disk work in a thread, awaited: committed before the answer leaves (a crash after this
        # loses nothing), yet a journal busy pruning never stalls the event loop's other requests.
        await asyncio.get_running_loop().run_in_executor(None, self._keep, caller, synapse, image, answer)
        if self.metrics is not None:
            self.metrics.answered(synapse.__class__.__name__, caller, answer.outcome.split(":")[0],
                                  answer.latency_ms / 1000.0, answer.settled_by, answer.tier_ms)
        self._log_request(caller, synapse, answer, payload_chars)
        return synapse

    def _keep(self, caller: str, synapse: ImageSynapse, image: str, answer: Answer) -> None:
        """The journal row, and the image itself when the answer was a near-toss-up (active learning)
        or came with its true label (testnet harvesting)."""
        if self.uncertain is not None and answer.outcome == "ok" and answer.settled_by != "cache":
            try:
                self.uncertain.offer(image, answer.prediction)
            except OSError as exc:  # a full disk must not cost the answer
                logger.error(f"keeping an uncertain image failed: {exc}")
        if self.harvest is not None and synapse.testnet_label in (0, 1):
            try:
                self.harvest.offer(image, synapse.testnet_label, answer.prediction)
            except OSError as exc:
                logger.error(f"harvesting a labelled testnet image failed: {exc}")
        if self.journal is not None:
            try:
                self.journal.record(
                    caller, synapse.__class__.__name__, answer.latency_ms, answer.settled_by, answer.prediction,
                    answer.outcome, answer.latency_ms / 1000.0 < (synapse.timeout or 12.0), synapse.testnet_label,
                )
            except Exception as exc:  # a full disk must not cost the answer
                logger.error(f"journal write failed: {exc}")

    @staticmethod
    def _log_request(caller: str, synapse: ImageSynapse, answer: Answer, payload_chars: int) -> None:
        """The one line per answered request: who, what, how it went; never the image itself."""
        line = (
            f"request validator={short_hotkey(caller)} type={synapse.__class__.__name__} outcome={answer.outcome} "
            f"p={answer.prediction:.3f} tier={answer.settled_by} latency_ms={answer.latency_ms:.0f} bytes={payload_chars}"
        )
        if synapse.testnet_label != -1:
            line += f" label={synapse.testnet_label}"
        if answer.detail:
            line += f" detail={answer.detail[:DETAIL_CHARS]!r}"
        logger.log(LEVELS.get(answer.outcome.split(":")[0], "INFO"), line)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.cascade.close()
