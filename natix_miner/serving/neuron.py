"""The miner neuron: wallet -> chain -> cascade -> axon, then keep the chain view fresh until told to stop."""

import contextlib
import fcntl
import json
import logging
import os
import sys
import signal
import socket
import threading
import time
import typing
from pathlib import Path

import bittensor as bt

from cascade.config import ConfigError, build_cascade
from cascade.engine import TIER_THREAD_PREFIX
from cascade.extras import MissingExtra
from cascade.scenes import generate_scene

from .chain import Chain, connect_real_chain
from .config import LOCAL_VALIDATOR_STAKE, MinerSettings, build_parser, settings_from_args
from ..errors import SetupError
from .forward import ForwardHandler
from .caller_gate import CallerGate, RefusalThrottle
from .guard import Guard, GuardPolicy
from .http_limits import BodySizeLimit, RequestReadDeadline
from .active_learning import HarvestStore, UncertainStore
from . import logs
from .journal import RequestJournal, journal_path, state_name_of
from .logs import logger
from .metrics import MinerMetrics
from .local_chain import build_local_chain
from .protocol import ExtendedImageSynapse, ImageSynapse
from .signatures import SignatureVerifier
from .subnet_watch import SubnetWatch
from .wallet import load_wallet

# Headroom for the JSON and header fields around the base64 image.
BODY_OVERHEAD_BYTES = 64 * 1024


def routes_for(synapse_class, handler: ForwardHandler, guard: Guard):
    """Functions whose signatures `bt.Axon.attach` accepts for `synapse_class`.

    attach compares signatures exactly (parameter name `synapse`, annotation the class itself,
    `typing.Tuple[bool, str]`), which is why this module avoids `from __future__ import annotations`.
    """

    async def forward(synapse: synapse_class) -> synapse_class:
        return await handler.forward(synapse)

    async def blacklist(synapse: synapse_class) -> typing.Tuple[bool, str]:
        return guard.check(synapse)  # verifies the signature before it spends a rate-limit token

    async def priority(synapse: synapse_class) -> float:
        return guard.priority(synapse)

    async def verify(synapse: synapse_class) -> None:
        """Already done: bittensor runs the blacklist first, and the guard verified there (signature,
        freshness, replay). This replaces bittensor's default verify, which refuses a validator's
        concurrent requests that arrive out of nonce order."""

    return forward, blacklist, priority, verify


class Miner:
    def __init__(self, settings: MinerSettings):
        self.settings = settings
        self.stop_event = threading.Event()
        self.axon: bt.Axon | None = None
        self.handler: ForwardHandler | None = None
        self.journal: RequestJournal | None = None
        self.watch: SubnetWatch | None = None

    # --- start-up -------------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        self._require_free_port()  # cheapest check first: fail before anything slow
        self.wallet = load_wallet(s.wallet_name, s.wallet_hotkey, s.wallet_path, create_missing=s.local)
        self.hotkey = self.wallet.hotkey.ss58_address
        self.chain = self._connect_chain()
        with self._explain_chain_errors("checking registration"):
            self.uid = self._require_registration()
            snapshot = self.chain.snapshot(s.netuid)
        self.metrics = MinerMetrics()
        self.verifier = SignatureVerifier(self.hotkey)
        self.throttle = RefusalThrottle()
        self._require_state_dir()
        self._lock_state()
        self.guard = Guard(
            GuardPolicy(s.force_validator_permit, s.min_stake, s.rate_limit, s.rate_burst), snapshot,
            on_refusal=lambda reason: self.metrics.refused.labels(reason).inc(),
            verify=self.verifier.verify, throttle=self.throttle,
        )
        self._open_log_file()
        self.journal = self._open_journal()
        self.handler = self._load_cascade()
        if not s.local and not s.model_url:
            logger.warning("no --model_url: SN72 validators expect the Hugging Face repo of your model")
        self.axon = self._build_axon()
        with self._explain_chain_errors("publishing the axon"):
            self.axon.serve(netuid=s.netuid, subtensor=self.chain)
        self.axon.start()
        self._wait_until_answering()
        if s.metrics_port:
            try:
                self.metrics.serve(s.metrics_port, s.metrics_ip)
            except OSError as exc:
                raise SetupError(f"cannot serve metrics on {s.metrics_ip}:{s.metrics_port} ({exc.strerror}): choose another --metrics.port") from None
            logger.info(f"metrics at http://{s.metrics_ip}:{s.metrics_port}/metrics")
        self.watch = self._open_watch()
        self._publish_figures(snapshot)
        logger.info(
            f"miner uid {self.uid} ({self.hotkey}) serving netuid {s.netuid} on {self.axon.external_ip}:"
            f"{self.axon.external_port} via {self.chain.network}"
        )
        if s.ready_file is not None:
            self._write_ready_file(s.ready_file)

    @contextlib.contextmanager
    def _explain_chain_errors(self, doing: str):
        try:
            yield
        except SetupError:
            raise
        except Exception as exc:  # RPC and websocket failures after connecting
            raise SetupError(
                f"the chain at {self.chain.network} failed while {doing} ({type(exc).__name__}: {exc}); "
                "check the endpoint and try again"
            ) from None

    def _connect_chain(self) -> Chain:
        s = self.settings
        if not s.local:
            return connect_real_chain(s.network, attempts=s.chain_retries + 1)
        chain = build_local_chain(s.netuid, self.hotkey, self.wallet.coldkeypub.ss58_address, s.local_validator_hotkeys,
                                  LOCAL_VALIDATOR_STAKE, s.local_subnet_state)
        logger.info(
            f"local mode: in-process chain, netuid {s.netuid}, miner + {len(s.local_validator_hotkeys)} validator(s), "
            f"subnet {s.local_subnet_state}"
        )
        return chain

    def _require_registration(self) -> int:
        s = self.settings
        if not self.chain.subnet_exists(s.netuid):
            raise SetupError(f"netuid {s.netuid} does not exist on {self.chain.network}: check --netuid (72 mainnet, 323 testnet)")
        uid = self.chain.uid_for_hotkey(s.netuid, self.hotkey)
        if uid is None:
            raise SetupError(
                f"hotkey {self.hotkey} is not registered on netuid {s.netuid}: run `btcli subnets register "
                f"--netuid {s.netuid} --wallet.name {s.wallet_name} --wallet.hotkey {s.wallet_hotkey}`"
            )
        return uid

    def _require_state_dir(self) -> None:
        state_dir = self.settings.state_dir
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            probe = state_dir / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SetupError(
                f"cannot use --neuron.state_dir {state_dir} ({exc.strerror or exc}): it holds the journal and the log; "
                "choose a folder the miner's user can write"
            ) from None

    def _lock_state(self) -> None:
        """One miner per wallet, hotkey and netuid in a state folder: a second one would write the same
        journal and ready file. The lock goes with the process, also when it is killed."""
        s = self.settings
        path = s.state_dir / f"miner-{state_name(s)}.lock"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise SetupError(
                f"another miner (pid {holder}) already runs as {s.wallet_name}/{s.wallet_hotkey} on netuid {s.netuid} "
                f"with its state in {s.state_dir}: stop it first, or give this one another --wallet.hotkey or --neuron.state_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._state_lock = handle

    def _open_log_file(self) -> None:
        """Like the journal, the log file appears in the state folder only once this hotkey can mine."""
        s = self.settings
        logs.configure(log_file(s), s.log_level, s.log_rotation, s.log_retention, s.log_compression)
        logger.info(f"log file: {log_file(s)}")

    def _open_journal(self) -> RequestJournal:
        s = self.settings
        path = journal_path(s.state_dir, state_name(s))
        journal = RequestJournal(path, retention_days=s.journal_days)
        kept = f"{journal.count()} requests kept" if journal.problem is None else f"DEGRADED: {journal.problem}"
        logger.info(f"request journal: {path} ({kept})")
        return journal

    def _load_cascade(self) -> ForwardHandler:
        config = self.settings.cascade
        try:
            cascade = build_cascade(config)
        except MissingExtra as exc:
            raise exc.within(f"cannot load the cascade from {config.source}") from None
        except Exception as exc:
            raise SetupError(f"cannot load the cascade from {config.source}: {type(exc).__name__}: {exc}") from None
        for line in cascade.describe():
            logger.info(f"tier {line}")
        started = time.perf_counter()
        cascade.predict(generate_scene(0).image)  # warm-up: the first forward pays for allocation
        logger.info(f"cascade warm in {(time.perf_counter() - started) * 1000:.0f} ms")
        s = self.settings
        return ForwardHandler(
            cascade,
            config.image.limits(),
            deadline_s=config.deadline_s,
            fallback_probability=config.fallback_probability,
            workers=config.workers,
            model_url=s.model_url,
            journal=self.journal,
            metrics=self.metrics,
            uncertain=UncertainStore(s.state_dir / "uncertain", s.active_margin, s.active_max_images, s.active_max_bytes, config.image.limits())
            if s.active_margin > 0 else None,
            harvest=HarvestStore(s.harvest_dir, s.harvest_max_bytes, limits=config.image.limits()) if s.harvest_dir is not None else None,
        )

    def _open_watch(self) -> SubnetWatch | None:
        """Whether the subnet pays and whether validators come; a record, never a reason to stop."""
        path = self.settings.state_dir / f"payout-{state_name(self.settings)}.sqlite"
        try:
            return SubnetWatch(path, self.hotkey, self.metrics, lambda: self.handler.last_request_at, self.journal.path)
        except Exception as exc:
            logger.error(f"cannot open the payout record {path} ({type(exc).__name__}: {exc}); serving without it")
            return None

    def _require_free_port(self) -> None:
        host = self.settings.axon_ip.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind((host, self.settings.axon_port))
            except OSError as exc:
                raise SetupError(
                    f"cannot listen on {self.settings.axon_ip}:{self.settings.axon_port} ({exc.strerror}): "
                    "another process holds the port; choose another with --axon.port"
                ) from None

    def _build_axon(self) -> bt.Axon:
        s = self.settings
        external_ip = s.axon_external_ip
        if external_ip is None and s.local:
            external_ip = "127.0.0.1"
        try:
            axon = bt.Axon(
                wallet=self.wallet,
                ip=s.axon_ip,
                port=s.axon_port,
                external_ip=external_ip,
                external_port=s.axon_external_port,
                max_workers=s.axon_max_workers,
            )
        except Exception as exc:
            raise SetupError(
                f"cannot create the axon ({type(exc).__name__}: {exc}); if the external IP lookup failed, "
                "pass --axon.external_ip YOUR_PUBLIC_IP"
            ) from None
        axon.fast_config.http = RequestReadDeadline.refusing(self.throttle.is_banned)  # read by uvicorn when the axon starts
        if self._given_host() is not None:  # bittensor always listens on 0.0.0.0; a given address is meant
            axon.fast_config.host = self._given_host()
        axon.app.add_middleware(
            BodySizeLimit, max_bytes=s.cascade.image.max_payload_bytes + BODY_OVERHEAD_BYTES
        )
        axon.app.add_middleware(CallerGate, guard=self.guard, throttle=self.throttle)  # added last: runs first
        for synapse_class in (ImageSynapse, ExtendedImageSynapse):
            forward, blacklist, priority, verify = routes_for(synapse_class, self.handler, self.guard)
            axon.attach(forward_fn=forward, blacklist_fn=blacklist, priority_fn=priority, verify_fn=verify)
        return axon

    def _given_host(self) -> str | None:
        """The address --axon.ip names, or None for every interface (the default)."""
        host = self.settings.axon_ip.strip("[]")
        return None if host in ("", "0.0.0.0", "::") else host

    def _local_address(self) -> tuple[str, int]:
        return self._given_host() or "127.0.0.1", self.settings.axon_port

    def _wait_until_answering(self, timeout_s: float = 30.0) -> None:
        """Wait until the HTTP server accepts connections (a probe request would log a bogus error)."""
        address, deadline = self._local_address(), time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.axon.started:
                break
            try:
                socket.create_connection(address, timeout=1.0).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SetupError(
            f"the axon is not accepting connections on {address[0]}:{address[1]}: is port "
            f"{self.settings.axon_port} taken? choose another with --axon.port"
        )

    def _write_ready_file(self, path: Path) -> None:
        info = {
            "hotkey": self.hotkey,
            "ip": self.axon.external_ip,
            "port": self.axon.external_port,
            "uid": self.uid,
            "netuid": self.settings.netuid,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(info))
        os.replace(temporary, path)  # readers never see a half-written file

    # --- running --------------------------------------------------------------------------------

    def run_until_stopped(self) -> None:
        while not self.stop_event.wait(self.settings.sync_interval_s):
            self.sync()

    def sync(self) -> None:
        """Refresh the guard's view of the subnet; say loudly if this hotkey lost its slot."""
        s = self.settings
        try:
            snapshot = self.chain.snapshot(s.netuid)
        except Exception as exc:
            logger.warning(f"metagraph sync failed, keeping the previous view: {exc}")
            return
        self.guard.update(snapshot)
        self._publish_figures(snapshot)
        self.verifier.forget_idle()
        if self.journal is not None:
            self.journal.record_refusals(self.guard.take_refusals())  # never journalled one by one: refused before the forward
            self.journal.maintain()
            self.metrics.journal_degraded.set(self.journal.problem is not None)
        me = snapshot.by_hotkey.get(self.hotkey)
        if me is None:
            logger.error(f"hotkey {self.hotkey} is no longer registered on netuid {s.netuid}: re-register to keep mining")
            return
        if me.uid != self.uid:
            logger.warning(f"uid changed {self.uid} -> {me.uid}")
            self.uid = me.uid
        logger.info(
            f"block {snapshot.block} | uid {me.uid} | stake {me.stake:.2f} | incentive {me.incentive:.5f} | "
            f"emission {me.emission:.5f} | answers {dict(self.handler.outcomes)} | refused {dict(self.guard.refusals)}"
        )

    def _publish_figures(self, snapshot) -> None:
        me = snapshot.by_hotkey.get(self.hotkey)
        if self.journal is not None:
            self.journal.record_figures(snapshot.block, me)
        self.metrics.chain.labels("block").set(snapshot.block)
        self.metrics.chain.labels("registered").set(me is not None)
        if me is not None:
            for figure in ("uid", "stake", "incentive", "emission", "validator_trust"):
                self.metrics.chain.labels(figure).set(getattr(me, figure))
        if self.watch is not None:
            self.watch.observe(self.chain, snapshot)

    def stop(self) -> None:
        self.stop_event.set()
        if self.axon is not None:
            self.axon.stop()
        if self.handler is not None:
            self.handler.shutdown()
        if self.journal is not None:
            self.journal.record_refusals(self.guard.take_refusals())  # those since the last sync (the guard exists before the journal)
            self.journal.close()
            self.journal = None
        if self.watch is not None:
            self.watch.close()
            self.watch = None


def state_name(s: MinerSettings) -> str:
    """What tells this miner's files apart from another's in the same state folder."""
    return state_name_of(s.wallet_name, s.wallet_hotkey, s.netuid, s.local)


def log_file(s: MinerSettings) -> Path:
    return s.state_dir / "logs" / f"miner-{state_name(s)}.log"


def configure_logging(s: MinerSettings) -> None:
    """bittensor's own logging at the chosen level; the miner's own lines through loguru (logs.py), to
    stderr until Miner.start adds the rotated file."""
    logs.uncolour(getattr(bt.logging, "_handlers", []), sys.stdout)  # bittensor 10's console handler (no public accessor)
    {"trace": bt.logging.set_trace, "debug": bt.logging.set_debug}.get(s.log_level, bt.logging.set_info)()
    logging.getLogger("bittensor").addFilter(logs.BoundedLog())
    logs.configure(None, s.log_level)


def main(argv: list[str] | None = None, prog: str = "neurons/miner.py") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"natix-miner: invalid configuration:\n{exc}", flush=True)
        return 2
    configure_logging(settings)
    miner = Miner(settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: miner.stop_event.set())
    code = None
    try:
        miner.start()
        miner.run_until_stopped()
        code = 0
    except SetupError as exc:
        logger.error(f"natix-miner: {exc}")
        code = 1
    except MissingExtra as exc:  # the preset needs an extra this install lacks: a configuration problem
        logger.error(f"natix-miner: {exc}")
        code = 2
    finally:
        miner.stop()
        if code == 0:
            logger.info("miner stopped")
        logs.close()  # every queued line written before the process goes
    return code


def exit_process(code: int) -> None:
    """Exit with `code`, also when a tier thread is stuck in a model call that never returns.

    Python joins worker threads at exit, so one hung tier would keep a stopped miner alive until
    pm2 kills it. Everything that must survive (journal, logs) is closed by then; only the stuck
    call is left, and it is abandoned.
    """
    workers = [t for t in threading.enumerate() if t.name.startswith(TIER_THREAD_PREFIX)]
    give_up_at = time.monotonic() + 2.0  # idle workers leave at once after the pool's shutdown
    for worker in workers:
        worker.join(timeout=max(0.0, give_up_at - time.monotonic()))
    stuck = [t for t in workers if t.is_alive()]
    if stuck:
        print(f"natix-miner: {len(stuck)} tier call(s) still running at exit; abandoning them", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)
