"""Prometheus metrics an operator can scrape: `--metrics.port N` serves them at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 6.5, 9.0, 15.0)


class MinerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("natix_requests", "Answered requests", ["synapse", "validator", "outcome"], registry=r)
        self.forward_seconds = Histogram("natix_forward_seconds", "Forward latency", ["synapse"], buckets=LATENCY_BUCKETS, registry=r)
        self.tier_seconds = Histogram("natix_tier_seconds", "Latency of each tier call", ["tier"], buckets=LATENCY_BUCKETS, registry=r)
        self.settled = Counter("natix_settled", "Answers by the tier whose answer stood ('cache' for cache hits)", ["tier"], registry=r)
        self.refused = Counter("natix_refused", "Requests refused before the forward", ["reason"], registry=r)
        self.chain = Gauge("natix_chain", "This miner's figures on chain", ["figure"], registry=r)
        self.journal_degraded = Gauge("natix_journal_degraded", "1 while the request journal cannot be written (answers go on)", registry=r)
        self.payout = Gauge(
            "natix_subnet_payout",
            "Whether the subnet pays miners, from the validators' weights: paying (1 yes, 0 no, -1 unknown), paying_share "
            "(of validator stake weighting uids other than the owner's), owner_only_share, own_share (this miner's), since_block",
            ["figure"], registry=r,
        )
        self.validator_requests = Gauge(
            "natix_validator_requests",
            "seconds_since_last validator request (or since start, if later), expected_interval_s one validator's schedule implies, overdue (1: far past it)",
            ["figure"], registry=r,
        )

    def answered(self, synapse: str, validator: str, outcome: str, seconds: float, settled_by: str, tier_ms: dict[str, float]) -> None:
        self.requests.labels(synapse, validator, outcome).inc()
        self.forward_seconds.labels(synapse).observe(seconds)
        if outcome == "ok":
            self.settled.labels(settled_by).inc()
        for tier, ms in tier_ms.items():
            self.tier_seconds.labels(tier).observe(ms / 1000.0)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)
