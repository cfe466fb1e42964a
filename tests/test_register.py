"""`natix-miner register` against a NATIX-like server on loopback (never the real endpoint)."""

import argparse
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bittensor_wallet import Keypair

from natix_miner.tools import register
from natix_miner.tools.cli import main
from natix_miner.errors import SetupError
from natix_miner.serving.wallet import load_wallet

FIELDS = {"uid", "message", "natix_public_key", "natix_signature", "type", "model_repo"}


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def wallet(tmp_path):
    path = str(tmp_path / "wallets")
    return load_wallet("miner", "hot", path, create_missing=True), path


class FakeNatix:
    """Answers POST /participants/register once and the status GETs in turn (the last one repeats)."""

    def __init__(self, post=(200, {"detail": "Registration queued"}), statuses=((200, {"status": "succeeded"}),)):
        self.post, self.statuses = post, list(statuses)
        self.posts: list[tuple[str, dict]] = []
        self.gets: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code, body):
                data = (json.dumps(body) if isinstance(body, dict) else body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.posts.append((self.path, body))
                self.answer(*fake.post)

            def do_GET(self):
                fake.gets.append(self.path)
                self.answer(*(fake.statuses.pop(0) if len(fake.statuses) > 1 else fake.statuses[0]))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def natix():
    servers = []

    def start(**kwargs):
        servers.append(FakeNatix(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def run(base_url, wallet_path, *extra):
    return main(["register", "--uid", "7", "--model-repo", "someone/roadwork", "--base-url", base_url,
                 "--wallet.name", "miner", "--wallet.hotkey", "hot", "--wallet.path", wallet_path,
                 "--poll-interval", "0.02", "--timeout", "2", *extra])


def test_posts_exactly_the_fields_of_register_sh_signed_as_btcli_signs(natix, wallet, capsys):
    keys, path = wallet
    server = natix(statuses=[(200, {"status": "pending"}), (200, {"status": "processing"}), (200, {"status": "succeeded"})])
    before = int(time.time())
    assert run(server.url, path) == 0
    out = capsys.readouterr().out
    assert "Registration queued" in out and "pending" in out and "succeeded" in out
    assert len(server.posts) == 1
    route, body = server.posts[0]
    assert route == "/participants/register"
    assert set(body) == FIELDS and all(isinstance(v, str) for v in body.values())
    assert body["uid"] == "7" and body["type"] == "miner" and body["model_repo"] == "someone/roadwork"
    assert body["natix_public_key"] == keys.hotkey.ss58_address
    assert body["message"].isdigit() and before <= int(body["message"]) <= time.time()
    signature = body["natix_signature"]
    assert len(signature) == 128 and signature == signature.lower() and not signature.startswith("0x")
    verifier = Keypair(ss58_address=body["natix_public_key"])  # how btcli's `wallet verify` reads it
    assert verifier.verify(body["message"], bytes.fromhex(signature))
    assert not verifier.verify(str(int(body["message"]) + 1), bytes.fromhex(signature))
    assert server.gets == ["/participants/registration-status/7"] * 3


def test_a_failed_registration_exits_3_with_the_servers_reason(natix, wallet, capsys):
    server = natix(statuses=[(200, {"status": "queued"}), (200, {"status": "failed", "error_message": "model repo someone/roadwork has no model_card.json"})])
    assert run(server.url, wallet[1]) == register.FAILED == 3
    assert "no model_card.json" in capsys.readouterr().out


@pytest.mark.parametrize("status", ["error", "ERROR"])
def test_status_error_counts_as_failed(natix, wallet, status):
    server = natix(statuses=[(200, {"status": status})])
    assert run(server.url, wallet[1]) == 3


def test_a_non_json_answer_to_the_registration_exits_5(natix, wallet, capsys):
    server = natix(post=(200, "<html>maintenance</html>"))
    assert run(server.url, wallet[1]) == register.NOT_JSON == 5
    out = capsys.readouterr().out
    assert "did not answer a JSON object" in out and "maintenance" in out
    assert server.gets == []  # nothing polled after a refused registration


def test_an_http_error_exits_4_with_the_detail(natix, wallet, capsys):
    server = natix(post=(500, {"detail": "database unavailable"}))
    assert run(server.url, wallet[1]) == register.HTTP_ERROR == 4
    out = capsys.readouterr().out
    assert "HTTP 500" in out and "database unavailable" in out
    assert server.gets == []


def test_polling_that_never_ends_times_out_with_6(natix, wallet, capsys):
    server = natix(statuses=[(200, {"status": "pending"})])
    started = time.monotonic()
    assert run(server.url, wallet[1], "--timeout", "0.3", "--poll-interval", "0.05") == register.TIMED_OUT == 6
    assert time.monotonic() - started < 3
    assert 3 <= len(server.gets) <= 8
    assert "gave up: still pending after 0.3 s" in capsys.readouterr().out


@pytest.mark.parametrize("answer, code, text", [((502, "<html>Bad Gateway</html>"), 4, "HTTP 502"),
                                                 ((200, "not json"), 5, "did not answer a JSON object")])
def test_bad_status_answers_are_retried_then_decide_the_exit_code(natix, wallet, capsys, answer, code, text):
    server = natix(statuses=[answer])
    assert run(server.url, wallet[1], "--timeout", "0.2", "--poll-interval", "0.05") == code
    assert len(server.gets) >= 2 and text in capsys.readouterr().out


def test_a_bad_status_answer_then_success_still_succeeds(natix, wallet):
    server = natix(statuses=[(503, {"detail": "busy"}), (200, "oops"), (200, {"status": "success"})])
    assert run(server.url, wallet[1]) == 0 and len(server.gets) == 3


def test_nobody_listening_exits_7(wallet, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert run(f"http://127.0.0.1:{port}", wallet[1]) == register.NO_CONNECTION == 7
    assert "cannot reach" in capsys.readouterr().out


def test_status_only_polls_without_registering(natix, wallet):
    server = natix(statuses=[(200, {"status": "succeeded"})])
    code = main(["register", "--status-only", "--uid", "7", "--base-url", server.url, "--wallet.name", "miner",
                 "--wallet.hotkey", "hot", "--wallet.path", wallet[1]])
    assert code == 0 and server.posts == [] and server.gets == ["/participants/registration-status/7"]


def test_bad_arguments_and_missing_wallet_exit_2(natix, wallet, tmp_path, capsys):
    server = natix()
    assert main(["register", "--uid", "7", "--model-repo", "roadwork", "--base-url", server.url, "--wallet.path", wallet[1]]) == 2
    assert "user/model" in capsys.readouterr().err
    assert main(["register", "--uid", "7", "--model-repo", "a/b", "--base-url", server.url, "--wallet.path", str(tmp_path / "none")]) == 2
    assert "btcli wallet new_hotkey" in capsys.readouterr().err
    assert server.posts == [] and server.gets == []


class FakeSubtensor:
    def __init__(self, registered: dict):
        self.registered = registered

    def get_uid_for_hotkey_on_subnet(self, hotkey_ss58, netuid):
        return self.registered.get((hotkey_ss58, netuid))


def test_the_uid_comes_from_the_chain_when_not_given(wallet):
    hotkey = wallet[0].hotkey.ss58_address
    parser = argparse.ArgumentParser()
    register.add_arguments(parser)
    args = parser.parse_args(["--netuid", "323", "--subtensor.network", "test", "--wallet.name", "miner", "--wallet.hotkey", "hot"])
    assert register.resolve_uid(args, hotkey, connect=lambda network: FakeSubtensor({(hotkey, 323): 41})) == 41
    with pytest.raises(SetupError, match="btcli subnets register --netuid 323 --subtensor.network test --wallet.name miner"):
        register.resolve_uid(args, hotkey, connect=lambda network: FakeSubtensor({(hotkey, 72): 41}))


def test_an_unreachable_chain_exits_2_naming_it(wallet, natix, capsys):
    server = natix()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"ws://127.0.0.1:{probe.getsockname()[1]}"
    code = main(["register", "--model-repo", "a/b", "--base-url", server.url, "--subtensor.network", endpoint,
                 "--wallet.name", "miner", "--wallet.hotkey", "hot", "--wallet.path", wallet[1]])
    assert code == 2 and endpoint in capsys.readouterr().err and server.posts == []
