"""Run the tiers in order under a deadline, fuse what they say, stop when confident.

For each image, tier by tier:
  - a tier whose circuit breaker is open (it kept failing) is passed over until its cool-down ends;
  - a tier whose recent p95 latency no longer fits the time left is skipped;
  - a tier that overruns the time left is abandoned (its thread finishes unobserved);
  - after each tier, all answers so far are fused by weighted log-odds, and the image is settled
    when the fused probability leaves that tier's (exit_below, exit_above) band.
Whatever happens, the answer is the fusion of the tiers that did answer; if none did, NoAnswer.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from PIL import Image

from .calibration import logit
from .image import ImageLimits, decode_base64_image
from .tier import Tier, TierOutput


class NoAnswer(RuntimeError):
    """No tier answered in time: the caller answers its fallback."""


@dataclass(frozen=True)
class Stage:
    tier: Tier
    # The image is settled when the fused probability falls outside (exit_below, exit_above).
    exit_below: float = 0.0
    exit_above: float = 1.0
    weight: float = 1.0  # in the log-odds fusion


@dataclass(frozen=True)
class CascadeResult:
    probability: float
    explanation: str
    settled_by: str  # the last tier that answered
    tier_ms: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # tier -> why it did not answer
    cached: bool = False


TIER_THREAD_PREFIX = "tier"  # the threads tier calls run in (neuron.exit_process looks for stuck ones)
# The engine's defaults, which the YAML schema (cascade/config.py) takes as its own.
DEFAULT_WORKERS = 8  # images in flight; concurrent ones are batched per tier
DEFAULT_CACHE_SIZE = 4096  # answers remembered by image content hash
BREAKER_FAILURES, BREAKER_COOLDOWN_S = 3, 30.0  # consecutive errors that take a tier out, and for how long


class LatencyWindow:
    """A tier's recent latencies (the last N, none older than `horizon_s`), for deciding whether it
    still fits. The horizon matters: a tier skipped for its p95 adds no new samples, so without it
    one bad spell would keep the tier out for good; once its samples age out it is tried again."""

    def __init__(self, size: int = 100, horizon_s: float = 60.0, clock=time.monotonic):
        self._samples: deque[tuple[float, float]] = deque(maxlen=size)  # (when, seconds)
        self._horizon_s = horizon_s
        self._clock = clock
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append((self._clock(), seconds))

    def p95(self) -> float:
        oldest = self._clock() - self._horizon_s
        with self._lock:
            while self._samples and self._samples[0][0] < oldest:
                self._samples.popleft()
            if not self._samples:
                return 0.0
            ordered = sorted(seconds for _, seconds in self._samples)
        return ordered[min(len(ordered) - 1, int(math.ceil(0.95 * len(ordered))) - 1)]


class CircuitBreaker:
    """Opens after `failures` consecutive errors; lets one call through after `cooldown_s`."""

    def __init__(self, failures: int = BREAKER_FAILURES, cooldown_s: float = BREAKER_COOLDOWN_S, clock=time.monotonic):
        self.failures, self.cooldown_s, self._clock = failures, cooldown_s, clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at >= self.cooldown_s:
                self._opened_at = self._clock()  # half-open: this call is the probe; others wait another cool-down
                return True
            return False

    def succeeded(self) -> None:
        with self._lock:
            self._consecutive, self._opened_at = 0, None

    def failed(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._consecutive >= self.failures:
                self._opened_at = self._clock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None


def fuse(answers: list[tuple[float, TierOutput]]) -> float:
    """Weighted mean of the answers' log-odds, back to a probability."""
    total = sum(weight for weight, _ in answers)
    z = sum(weight * logit(out.probability) for weight, out in answers) / total
    return 1.0 / (1.0 + math.exp(-z))


class ResultCache:
    """LRU of answers by content hash of the payload: a repeated image costs a dictionary lookup."""

    def __init__(self, capacity: int = DEFAULT_CACHE_SIZE):
        self.capacity = capacity
        self._items: OrderedDict[str, CascadeResult] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(payload: str | bytes) -> str:
        return hashlib.sha256(payload.encode() if isinstance(payload, str) else payload).hexdigest()

    def get(self, key: str) -> CascadeResult | None:
        with self._lock:
            result = self._items.get(key)
            if result is not None:
                self._items.move_to_end(key)
            return result

    def put(self, key: str, result: CascadeResult) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[key] = result
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


class Cascade:
    def __init__(
        self,
        stages: list[Stage],
        breakers: list[CircuitBreaker] | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        workers: int = DEFAULT_WORKERS,
        clock=time.monotonic,
        calibration=None,
    ):
        if not stages:
            raise ValueError("a cascade needs at least one tier")
        self.stages = stages
        self.breakers = breakers or [CircuitBreaker(clock=clock) for _ in stages]
        self.latency = [LatencyWindow(clock=clock) for _ in stages]
        self.cache = ResultCache(cache_size)
        self.calibration = calibration  # of the fused answer (cascade.calibration.Calibration)
        self._clock = clock
        # Tier calls run here so that one that overruns can be abandoned.
        self._pool = ThreadPoolExecutor(max_workers=max(workers, len(stages)), thread_name_prefix=TIER_THREAD_PREFIX)

    def predict_payload(self, payload: str, limits: ImageLimits, deadline: float | None = None) -> CascadeResult:
        """Decode a base64 image (raising ImageRejected) and predict, through the result cache."""
        key = ResultCache.key(payload)
        hit = self.cache.get(key)
        if hit is not None:
            return CascadeResult(hit.probability, hit.explanation, hit.settled_by, {}, {}, cached=True)
        result = self.predict(decode_base64_image(payload, limits), deadline)
        if not result.skipped:  # an answer cut short by the clock is not worth remembering
            self.cache.put(key, result)
        return result

    def predict(self, image: Image.Image, deadline: float | None = None) -> CascadeResult:
        """`deadline` is a time.monotonic() instant (None: no limit)."""
        answers: list[tuple[float, TierOutput]] = []
        tier_ms: dict[str, float] = {}
        skipped: dict[str, str] = {}
        settled_by = ""
        for index, stage in enumerate(self.stages):
            name = stage.tier.name
            remaining = None if deadline is None else deadline - self._clock()
            if not self.breakers[index].allow():
                skipped[name] = "circuit open"
                continue
            if remaining is not None and (remaining <= 0 or self.latency[index].p95() > remaining):
                skipped[name] = f"p95 {self.latency[index].p95() * 1000:.0f} ms does not fit {max(remaining, 0) * 1000:.0f} ms left"
                continue
            started = self._clock()
            future = self._pool.submit(stage.tier.predict, [image])
            try:
                output = future.result(timeout=remaining)[0]
                if not math.isfinite(output.probability):
                    raise ValueError(f"non-finite probability {output.probability}")
            except FutureTimeout:
                self.latency[index].add(self._clock() - started)  # the overrun teaches the p95
                skipped[name] = "overran the deadline"
                break
            except Exception as exc:
                self.breakers[index].failed()
                skipped[name] = f"failed: {type(exc).__name__}: {exc}"
                continue
            elapsed = self._clock() - started
            self.latency[index].add(elapsed)
            self.breakers[index].succeeded()
            tier_ms[name] = elapsed * 1000.0
            answers.append((stage.weight, output))
            settled_by = name
            if not stage.exit_below < fuse(answers) < stage.exit_above:
                break
        if not answers:
            raise NoAnswer("; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no tier ran")
        probability = fuse(answers)
        if self.calibration is not None:
            probability = self.calibration.apply_probability(probability)
        probability = min(1.0, max(0.0, probability))
        evidence = "; ".join(out.evidence for _, out in answers if out.evidence)
        return CascadeResult(probability, evidence or _default_explanation(settled_by, probability), settled_by, tier_ms, skipped)

    def describe(self) -> list[str]:
        return [stage.tier.describe() for stage in self.stages]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _default_explanation(tier_name: str, probability: float) -> str:
    verdict = "roadwork likely present" if probability > 0.5 else "no roadwork seen"
    return f"{verdict} (P={probability:.2f}, {tier_name})"
