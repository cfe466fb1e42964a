"""A validator-side client: signs and sends synapses to a miner with a real bittensor dendrite.

It imports nothing but bittensor and our protocol, so it runs under bittensor 9.12.2 (what
validators pin) as well as 10.x. Two uses:

  python -m natix_miner.tools.client --ready-file miner-ready.json --count 8
      try a local-mode miner: sends generated street scenes signed by //Alice, prints the answers.
  python -m natix_miner.tools.client --job - < job.json
      what the tests drive: {"axon": {"ip", "port", "hotkey"},
      "signer": {"uri": "//Alice"} | {"wallet_path", "name", "hotkey"},
      "requests": [{"synapse": "ImageSynapse", "image": "<base64>", "testnet_label": -1}, ...],
      "concurrency": 16, "timeout": 9}; prints one JSON object with a result per request, in order.
"""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

if not __package__:  # run as a file (e.g. from the validators' bittensor venv): import from the repo root,
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # not from this folder, whose names would shadow

import bittensor as bt  # noqa: E402
import bittensor.utils.networking as networking  # noqa: E402

from natix_miner.serving.protocol import ExtendedImageSynapse, ImageSynapse  # noqa: E402

networking.get_external_ip = lambda: "127.0.0.1"  # the dendrite looks its IP up online; we are offline
CLASSES = {"ImageSynapse": ImageSynapse, "ExtendedImageSynapse": ExtendedImageSynapse}


def signer(spec: dict):
    if "uri" in spec:
        return bt.Keypair.create_from_uri(spec["uri"])
    wallet_class = getattr(bt, "Wallet", None) or bt.wallet
    return wallet_class(name=spec["name"], hotkey=spec["hotkey"], path=spec["wallet_path"]).hotkey


async def run(job: dict) -> dict:
    dendrite_class = getattr(bt, "Dendrite", None) or bt.dendrite
    dendrite = dendrite_class(wallet=signer(job["signer"]))
    axon = bt.AxonInfo(
        version=1, ip=job["axon"]["ip"], port=job["axon"]["port"], ip_type=4,
        hotkey=job["axon"]["hotkey"], coldkey=job["axon"]["hotkey"],
    )
    gate = asyncio.Semaphore(job.get("concurrency", 1))

    async def one(request: dict) -> dict:
        synapse = CLASSES[request["synapse"]](image=request["image"], testnet_label=request.get("testnet_label", -1))
        async with gate:
            started = time.perf_counter()
            response = (await dendrite.forward(axons=[axon], synapse=synapse, timeout=job.get("timeout", 9), deserialize=False))[0]
            wall_s = time.perf_counter() - started
        return {
            "status_code": response.dendrite.status_code,
            "status_message": response.dendrite.status_message,
            "prediction": response.prediction,
            "explanation": getattr(response, "explanation", None),
            "model_url": getattr(response, "model_url", None),
            "wall_s": wall_s,
        }

    results = await asyncio.gather(*(one(r) for r in job["requests"]))
    await dendrite.aclose_session()
    return {"bittensor": bt.__version__, "signer": dendrite.keypair.ss58_address, "results": list(results)}


def demo_job(ready_file: Path, count: int) -> tuple[dict, list[bool]]:
    import base64
    import io

    from cascade.scenes import generate_scene

    ready = json.loads(ready_file.read_text())
    requests, labels = [], []
    for seed in range(count):
        scene = generate_scene(1_000_000 + seed)
        buffer = io.BytesIO()
        scene.image.save(buffer, format="JPEG", quality=90)
        synapse = "ExtendedImageSynapse" if seed % 2 else "ImageSynapse"
        requests.append({"synapse": synapse, "image": base64.b64encode(buffer.getvalue()).decode()})
        labels.append(scene.roadwork)
    axon = {"ip": ready["ip"], "port": ready["port"], "hotkey": ready["hotkey"]}
    return {"axon": axon, "signer": {"uri": "//Alice"}, "requests": requests, "concurrency": 4}, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ready-file", type=Path, help="the miner's --local.ready_file")
    source.add_argument("--job", help="a JSON job file, or - for standard input")
    parser.add_argument("--count", type=int, default=8, help="scenes to send with --ready-file")
    args = parser.parse_args()
    if args.job:
        job = json.load(sys.stdin if args.job == "-" else open(args.job))
        print(json.dumps(asyncio.run(run(job))))
        return
    job, labels = demo_job(args.ready_file, args.count)
    reply = asyncio.run(run(job))
    print(f"bittensor {reply['bittensor']} dendrite signed by {reply['signer']}")
    for request, label, result in zip(job["requests"], labels, reply["results"]):
        refusal = f" refused: {result['status_message']}" if result["status_code"] != 200 else ""
        print(
            f"{request['synapse']:<21} truth={'roadwork' if label else 'none':<8} status={result['status_code']} "
            f"prediction={result['prediction']:.3f} {result['wall_s'] * 1000:5.0f} ms {result.get('explanation') or ''}{refusal}"
        )


if __name__ == "__main__":
    main()
