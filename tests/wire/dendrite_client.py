"""A validator-side client: signs and sends synapses with a real bittensor dendrite.

Runs under whichever bittensor the interpreter has: the tests run it with bittensor 9.12.2 (what
validators pin) from a separate venv when one exists. Reads a JSON job from stdin:
  {"axon": {"ip", "port", "hotkey"}, "signer": {"uri": "//Alice"} | {"wallet_path", "name", "hotkey"},
   "requests": [{"synapse": "ImageSynapse", "image": "<base64>", "testnet_label": -1}, ...],
   "concurrency": 16, "timeout": 9}
and prints one JSON object: the bittensor version and a result per request, in order.
"""

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bittensor as bt  # noqa: E402
import bittensor.utils.networking as networking  # noqa: E402

from natix_miner.protocol import ExtendedImageSynapse, ImageSynapse  # noqa: E402

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


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.load(sys.stdin)))))
