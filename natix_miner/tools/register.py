"""`natix-miner register`: the NATIX economy registration of a miner (what the reference
streetvision-subnet `register.sh` does), after the on-chain `btcli subnets register`.

It POSTs to {base_url}/participants/register the JSON register.sh sends:
  uid               the miner's uid on the subnet, as a string (register.sh passes it with jq --arg)
  message           a fresh unix timestamp, as a string
  natix_public_key  the hotkey's ss58 address
  natix_signature   the hotkey's signature of `message`, as `btcli wallet sign --use-hotkey` prints it:
                    keypair.sign(message.encode("utf-8")).hex(), lower-case hex without 0x
  type              "miner"
  model_repo        the Hugging Face repo of the model, sent as given (register.sh does not rewrite it)
then polls {base_url}/participants/registration-status/{uid} until its `status` is succeeded/success
or failed/error (`error_message` is the reason), or --timeout passes. While polling, a bad answer is
reported and polling goes on, as register.sh does; when time runs out the last problem decides the
exit code.

Exit codes:
  0  registration succeeded
  2  bad arguments or set-up (wallet, uid, chain)
  3  the server says the registration failed (its reason is printed)
  4  the server answered with an HTTP error status
  5  the server's answer was not JSON
  6  timed out waiting for a final status
  7  cannot connect to the server (or it did not answer a request in time)
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from ..serving.chain import connect_real_chain
from ..errors import SetupError
from ..serving.wallet import load_wallet

DEFAULT_BASE_URL = "https://hydra.natix.network"
SUCCEEDED, FAILED, HTTP_ERROR, NOT_JSON, TIMED_OUT, NO_CONNECTION = 0, 3, 4, 5, 6, 7
DONE_STATUSES = {"succeeded": SUCCEEDED, "success": SUCCEEDED, "failed": FAILED, "error": FAILED}
WAITING_STATUSES = {"pending", "queued", "processing", ""}

EXIT_CODES = "exit codes:" + __doc__.split("Exit codes:")[1].rstrip()


@dataclass
class Answer:
    """One exchange with the server: `body` when it answered JSON with a 2xx status, else `problem`."""

    body: dict | None = None
    problem: str = ""
    code: int = 0  # exit code of the problem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description, parser.epilog = __doc__.split("Exit codes:")[0].rstrip(), EXIT_CODES
    parser.add_argument("--model-repo", default="", help="Hugging Face repo of your model, user/name (needed unless --status-only)")
    parser.add_argument("--uid", type=int, default=None, help="your uid on the subnet, looked up on the chain when not given")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="NATIX application server")
    parser.add_argument("--poll-interval", type=float, default=3.0, help="seconds between status checks")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a final status")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds to wait for one answer")
    parser.add_argument("--status-only", action="store_true", help="only poll the status of an earlier registration")
    parser.add_argument("--netuid", type=int, default=72, help="72 mainnet, 323 testnet")
    parser.add_argument("--subtensor.network", dest="subtensor_network", default="finney", help="finney, test, or a ws(s):// endpoint")
    parser.add_argument("--wallet.name", dest="wallet_name", default="default")
    parser.add_argument("--wallet.hotkey", dest="wallet_hotkey", default="default")
    parser.add_argument("--wallet.path", dest="wallet_path", default="~/.bittensor/wallets/")


def sign_message(keypair, message: str) -> str:
    """The signature as `btcli wallet sign --use-hotkey` prints it (bittensor-cli commands/wallets.py)."""
    return keypair.sign(message.encode("utf-8")).hex()


def registration_request(uid: int, keypair, model_repo: str, now: float | None = None) -> dict:
    message = str(int(time.time() if now is None else now))
    return {
        "uid": str(uid),
        "message": message,
        "natix_public_key": keypair.ss58_address,
        "natix_signature": sign_message(keypair, message),
        "type": "miner",
        "model_repo": model_repo,
    }


def exchange(url: str, payload: dict | None, timeout_s: float) -> Answer:
    """GET (payload None) or POST JSON; every failure becomes a one-line problem with its exit code."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, text = response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:  # refused, DNS, TLS, socket timeout
        reason = getattr(exc, "reason", exc)
        return Answer(problem=f"cannot reach {url}: {reason}", code=NO_CONNECTION)
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if status >= 400:
        detail = body.get("detail") if isinstance(body, dict) else text.strip()[:200]
        return Answer(problem=f"HTTP {status} from {url}: {detail or '(no detail)'}", code=HTTP_ERROR)
    if not isinstance(body, dict):
        return Answer(problem=f"{url} did not answer a JSON object: {text.strip()[:200]!r}", code=NOT_JSON)
    return Answer(body=body)


def poll_status(base_url: str, uid: int, interval_s: float, timeout_s: float, request_timeout_s: float) -> int:
    url = f"{base_url.rstrip('/')}/participants/registration-status/{uid}"
    deadline = time.monotonic() + timeout_s
    attempt, last = 0, Answer(problem=f"no final status within {timeout_s:g} s", code=TIMED_OUT)
    while True:
        attempt += 1
        answer = exchange(url, None, min(request_timeout_s, max(deadline - time.monotonic(), 0.1)))
        if answer.body is None:
            print(f"  attempt {attempt}: {answer.problem}", flush=True)
            last = answer
        else:
            status = str(answer.body.get("status") or "").lower()
            if status in DONE_STATUSES:
                if DONE_STATUSES[status] == SUCCEEDED:
                    print(f"registration succeeded for uid {uid}: {json.dumps(answer.body)}")
                    return SUCCEEDED
                print(f"registration failed for uid {uid}: {answer.body.get('error_message') or '(no reason given)'}")
                return FAILED
            note = "" if status in WAITING_STATUSES else f" (unknown status; full answer {json.dumps(answer.body)})"
            print(f"  attempt {attempt}: status {status or '(none yet)'}{note}", flush=True)
            last = Answer(problem=f"still {status or 'waiting'} after {timeout_s:g} s", code=TIMED_OUT)
        if time.monotonic() + interval_s > deadline:
            break
        time.sleep(interval_s)
    print(f"gave up: {last.problem}. Check again later with `natix-miner register --status-only --uid {uid}` "
          f"or `curl -s {url}`")
    return last.code


def resolve_uid(args: argparse.Namespace, hotkey: str, connect=None) -> int:
    if args.uid is not None:
        return args.uid
    kwargs = {} if connect is None else {"connect": connect}
    chain = connect_real_chain(args.subtensor_network, attempts=1, **kwargs)
    try:
        uid = chain.uid_for_hotkey(args.netuid, hotkey)
    except Exception as exc:
        raise SetupError(f"the chain at {args.subtensor_network} failed looking up the uid ({type(exc).__name__}: {exc}); "
                         "try again or pass --uid") from None
    if uid is None:
        raise SetupError(
            f"hotkey {hotkey} is not registered on netuid {args.netuid} at {args.subtensor_network}: first run `btcli subnets register "
            f"--netuid {args.netuid} --subtensor.network {args.subtensor_network} --wallet.name {args.wallet_name} "
            f"--wallet.hotkey {args.wallet_hotkey}`"
        )
    return uid


def run_register(args: argparse.Namespace) -> int:
    if not args.status_only and "/" not in args.model_repo:
        raise ValueError(f"--model-repo {args.model_repo!r} should name a Hugging Face repo, like user/model")
    if args.poll_interval <= 0 or args.timeout <= 0 or args.request_timeout <= 0:
        raise ValueError("--poll-interval, --timeout and --request-timeout must be more than 0")
    wallet = load_wallet(args.wallet_name, args.wallet_hotkey, args.wallet_path, create_missing=False)
    uid = resolve_uid(args, wallet.hotkey.ss58_address)
    base_url = args.base_url.rstrip("/")
    if not args.status_only:
        payload = registration_request(uid, wallet.hotkey, args.model_repo)
        print(f"registering uid {uid} (hotkey {payload['natix_public_key']}, model {args.model_repo}) at {base_url}", flush=True)
        answer = exchange(f"{base_url}/participants/register", payload, args.request_timeout)
        if answer.body is None:
            print(f"registration request failed: {answer.problem}")
            return answer.code
        print(f"server: {answer.body.get('detail') or json.dumps(answer.body)}", flush=True)
    print(f"polling the registration status of uid {uid} every {args.poll_interval:g} s for up to {args.timeout:g} s", flush=True)
    return poll_status(base_url, uid, args.poll_interval, args.timeout, args.request_timeout)
