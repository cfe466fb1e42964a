"""Does a flood from unregistered hotkeys hurt the registered validators? One run, side by side:
the same validator load (signed dendrites, a fixed rate) against a fresh miner without and with a
flood, in alternating rounds.

The flood is what an attacker can send cheapest: plain HTTP POSTs to /ImageSynapse carrying a
validator-style image and the headers of keys registered nowhere (signed once, replayed), from
separate processes with many connections each, as fast as this machine lets them, from another
address than the validators' (127.0.0.2: Linux routes all of 127/8 to loopback). The gate must
refuse them on their headers, before any model runs, and cut the address off once it floods.

    .venv/bin/python benchmarks/flood.py --rate 10 --duration 30 --flooders 2 --flood-concurrency 64

On a small box the flooder competes with the miner and the validators for the same cores, so
part of what a flood does to the validators here is the flooder's own CPU, which a real attacker
spends on his own machine. `--decoy` adds a control round per pair: the same flood aimed at a
decoy listener (another process, closing every connection as it arrives: what the miner does to
a throttled address) instead of the miner. Flooded minus decoy is what reaching the miner costs.
`--flooder-nice 19` runs the flooder at the lowest CPU priority; measured, that does not take its
cost off the box (it still sends ~2,700 requests a second, and the kernel's loopback work is not
governed by niceness), so the decoy control remains the way to tell the miner's share apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import challenge_payloads, percentile, run_load, uncached_copy  # noqa: E402
from natix_miner.serving.protocol import ImageSynapse  # noqa: E402


def _stranger_headers(info: dict, payload: str, count: int = 32) -> list[dict]:
    import bittensor as bt

    axon = bt.AxonInfo(version=1, ip=info["ip"], port=info["port"], ip_type=4, hotkey=info["hotkey"], coldkey=info["hotkey"])
    headers = []
    for _ in range(count):
        dendrite = bt.Dendrite(wallet=bt.Keypair.create_from_mnemonic(bt.Keypair.generate_mnemonic()))
        synapse = dendrite.preprocess_synapse_for_request(axon, ImageSynapse(image=payload), timeout=9.0)
        headers.append(synapse.to_headers())
    return headers


def _flood(info: dict, payload: str, concurrency: int, stop_at: float, results, source: str, nice: int) -> None:
    import aiohttp

    os.nice(nice)
    from natix_miner.tools import client  # noqa: F401  (no external-IP lookup)

    headers = _stranger_headers(info, payload)
    body = json.dumps({"image": payload}).encode()
    url = f"http://{info['ip']}:{info['port']}/ImageSynapse"
    statuses: Counter = Counter()

    async def worker(index: int, session) -> None:
        i = index
        while time.time() < stop_at:
            i += 1
            try:
                async with session.post(url, data=body, headers={**headers[i % len(headers)], "Content-Type": "application/json"}) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                statuses["error"] += 1

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=concurrency, local_addr=(source, 0))
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
            await asyncio.gather(*(worker(i, session) for i in range(concurrency)))

    asyncio.run(main())
    results.put(dict(statuses))


def _decoy(port: int, ready) -> None:
    class CloseAtOnce(asyncio.Protocol):
        def connection_made(self, transport):
            transport.close()

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(CloseAtOnce, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


@contextlib.contextmanager
def decoy_listener():
    """A listener in another process that closes each connection at once; yields its port."""
    from tests.wire.harness import free_port

    port, ready = free_port(), multiprocessing.Event()
    process = multiprocessing.Process(target=_decoy, args=(port, ready), daemon=True)
    process.start()
    ready.wait(10)
    try:
        yield port
    finally:
        process.kill()


def flood_factory(payload: str, flooders: int, concurrency: int, duration_s: float, sent: list, source: str, nice: int = 0,
                  decoy_port: int | None = None):
    @contextlib.contextmanager
    def flood(info: dict):
        if decoy_port is not None:  # the same flood, aimed away from the miner
            info = {**info, "ip": "127.0.0.1", "port": decoy_port}
        results = multiprocessing.Queue()
        stop_at = time.time() + duration_s + 5  # outlasts the validators' load
        processes = [multiprocessing.Process(target=_flood, args=(info, payload, concurrency, stop_at, results, source, nice)) for _ in range(flooders)]
        for process in processes:
            process.start()
        started = time.time()
        time.sleep(3)  # let the flood reach full rate before the validators start
        try:
            yield
        finally:
            totals: Counter = Counter()
            for _ in processes:
                totals.update(results.get(timeout=60))
            for process in processes:
                process.join()
            sent.append((dict(totals), time.time() - started))

    return flood


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-default")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10.0, help="validator requests per second, in all")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2, help="quiet/flooded pairs, alternating")
    parser.add_argument("--flooders", type=int, default=2, help="flooding processes")
    parser.add_argument("--flood-concurrency", type=int, default=64, help="connections per flooding process")
    parser.add_argument("--decoy", action="store_true", help="add a control round: the flood aimed at a decoy listener, not the miner")
    parser.add_argument("--flooder-nice", type=int, default=0, choices=range(20), metavar="0-19",
                        help="the flooding processes' niceness (19: the lowest CPU priority)")
    parser.add_argument("--flood-source", default="127.0.0.2",
                        help="the attacker's address (another loopback address than the validators' 127.0.0.1)")
    args = parser.parse_args()
    payloads = challenge_payloads(64)
    import tempfile

    quiet, flooded, decoyed, sent = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, (decoy_listener() if args.decoy else contextlib.nullcontext()) as decoy_port:
        config = ["--config", str(uncached_copy(args.config, Path(tmp)))]
        shape = f"{args.validators} validators, {args.rate:g} req/s"
        for round_ in range(args.rounds):
            quiet.append(run_load(f"quiet, {shape}", config, args.validators, args.concurrency, args.duration, payloads, rate=args.rate))
            print(quiet[-1].lines(), flush=True)
            flood = flood_factory(payloads[0], args.flooders, args.flood_concurrency, args.duration, sent, args.flood_source, args.flooder_nice)
            flooded.append(run_load(f"flooded, {shape}", config, args.validators, args.concurrency, args.duration, payloads,
                                    rate=args.rate, side_load=flood))
            statuses, seconds = sent[-1]
            print(flooded[-1].lines(), f"\n  flood: {sum(statuses.values()) / seconds:.0f} req/s, statuses {statuses}", flush=True)
            if decoy_port is not None:
                aimed_away = flood_factory(payloads[0], args.flooders, args.flood_concurrency, args.duration, sent, args.flood_source,
                                           args.flooder_nice, decoy_port)
                decoyed.append(run_load(f"flood at a decoy, {shape}", config, args.validators, args.concurrency, args.duration,
                                        payloads, rate=args.rate, side_load=aimed_away))
                statuses, seconds = sent[-1]
                print(decoyed[-1].lines(), f"\n  flood at the decoy: {sum(statuses.values()) / seconds:.0f} attempts/s", flush=True)

    def pooled_p99(reports) -> float:
        return percentile([t for r in reports for t in r.latencies], 0.99) * 1000

    quiet_p99, flooded_p99 = pooled_p99(quiet), pooled_p99(flooded)
    print(f"validators' p99: quiet {quiet_p99:.0f} ms, flooded {flooded_p99:.0f} ms, ratio {flooded_p99 / quiet_p99:.2f}; "
          f"failed {sum(r.failed for r in quiet)} / {sum(r.failed for r in flooded)}, "
          f"later than 9 s {sum(r.late for r in quiet)} / {sum(r.late for r in flooded)}")
    if decoyed:
        decoy_p99 = pooled_p99(decoyed)
        print(f"control: the same flood at a decoy listener, validators' p99 {decoy_p99:.0f} ms (ratio {decoy_p99 / quiet_p99:.2f} "
              f"from the flooder's CPU alone); flooded / decoy {flooded_p99 / decoy_p99:.2f} (what reaching the miner adds)")


if __name__ == "__main__":
    main()
