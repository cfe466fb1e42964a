"""Requests an attacker builds by hand: real bittensor signing, then headers changed at will, sent
over raw HTTP to the miner on loopback (what a real dendrite would never send)."""

from __future__ import annotations

import http.client
import json
import time
import uuid as uuidlib

import bittensor as bt

from natix_miner.serving.protocol import ImageSynapse


def signed_request(keypair: bt.Keypair, axon_hotkey: str, image: str, *, nonce: int | None = None,
                   timeout: float = 9.0, claimed_hotkey: str | None = None) -> tuple[dict, bytes]:
    """(headers, body) of an ImageSynapse signed by `keypair` exactly as a dendrite signs it, with
    `nonce` (default: now) and `timeout` as given; `claimed_hotkey` then replaces the hotkey header
    without re-signing (a forgery)."""
    synapse = ImageSynapse(image=image)
    synapse.timeout = timeout
    synapse.dendrite = bt.TerminalInfo(ip="127.0.0.1", version=1, nonce=nonce or time.time_ns(),
                                       uuid=str(uuidlib.uuid1()), hotkey=keypair.ss58_address)
    synapse.axon = bt.TerminalInfo(ip="127.0.0.1", port=1, hotkey=axon_hotkey)
    message = f"{synapse.dendrite.nonce}.{synapse.dendrite.hotkey}.{axon_hotkey}.{synapse.dendrite.uuid}.{synapse.body_hash}"
    synapse.dendrite.signature = f"0x{keypair.sign(message).hex()}"
    headers = synapse.to_headers()
    if claimed_hotkey is not None:
        headers["bt_header_dendrite_hotkey"] = claimed_hotkey
    return headers, json.dumps(synapse.model_dump()).encode()


def post(port: int, headers: dict, body: bytes, timeout_s: float = 15.0) -> tuple[int, str, float | None]:
    """(HTTP status, the axon's status message, prediction) of one raw request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("POST", "/ImageSynapse", body=body, headers={**headers, "Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        message = response.getheader("bt_header_axon_status_message") or ""
        try:
            prediction = json.loads(payload).get("prediction")
        except (ValueError, AttributeError):
            prediction = None
        return response.status, message, prediction
    finally:
        connection.close()
