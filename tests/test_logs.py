"""The miner's own log: one line per request without the image, rotated files, sinks never doubled."""

import asyncio
import re
import subprocess
import sys

import bittensor as bt
import pytest

from cascade.config import ConfigError
from natix_miner.serving import logs
from natix_miner.serving.config import build_parser, settings_from_args
from natix_miner.serving.logs import logger, short_hotkey
from natix_miner.serving.neuron import log_file
from natix_miner.serving.protocol import ExtendedImageSynapse
from tests.payloads import b64, jpeg_bytes
from tests.test_forward import ScriptedTier, handler, request
from tests.wire.harness import REPO, MinerProcess, free_port

VALIDATOR = "5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX"
LONG_BASE64 = re.compile(r"[A-Za-z0-9+/=]{100,}")


@pytest.fixture(autouse=True)
def restore_sinks():
    yield
    logs.close()


def read_logs(folder):
    logs.flush()
    return "".join(path.read_text() for path in sorted(folder.glob("*.log*")))


def request_lines(text):
    return [line for line in text.splitlines() if "| request validator=" in line]


def test_one_line_per_request_with_the_fields_and_never_the_image(tmp_path):
    log = tmp_path / "logs" / "miner.log"
    logs.configure(log, stderr=False)
    payload = b64(jpeg_bytes(seed=3))
    synapse = request(payload=payload)
    synapse.dendrite.hotkey = VALIDATOR
    asyncio.run(handler(ScriptedTier(0.812)).forward(synapse))

    text = read_logs(log.parent)
    lines = request_lines(text)
    assert len(lines) == 1, text
    line = lines[0]
    assert "| INFO " in line
    for field in ("validator=5F3sa2TJ…", "type=ImageSynapse", "outcome=ok", "p=0.812", "tier=scripted", f"bytes={len(payload)}"):
        assert field in line, (field, line)
    assert re.search(r" latency_ms=\d+", line)
    assert VALIDATOR not in line  # shortened
    assert payload not in text and payload[:64] not in text
    assert not LONG_BASE64.search(text)


def test_a_refused_image_is_one_warning_line_with_the_reason_and_no_payload(tmp_path):
    log = tmp_path / "miner.log"
    logs.configure(log, stderr=False)
    payload = b64(b"\x89PNG not really" * 4000)  # decodes, but is no image
    synapse = request(ExtendedImageSynapse, payload=payload)
    asyncio.run(handler(ScriptedTier(0.9)).forward(synapse))

    text = read_logs(tmp_path)
    (line,) = request_lines(text)
    assert "| WARNING" in line and "type=ExtendedImageSynapse" in line and "outcome=rejected:not_an_image" in line
    assert "detail=" in line and "p=0.500 tier=-" in line
    assert not LONG_BASE64.search(text)


def test_the_file_rotates_by_size_and_keeps_at_most_retention_files(tmp_path):
    folder = tmp_path / "logs"
    logs.configure(folder / "miner.log", rotation="2 KB", retention=3, stderr=False)
    for i in range(200):
        logger.info(f"line {i:04d} " + "x" * 80)
    text = read_logs(folder)
    logs.close()  # rotation and retention settle as the sink closes

    files = sorted(folder.iterdir())
    assert 2 <= len(files) <= 3, files
    assert all(path.stat().st_size <= 2000 for path in files)
    assert "line 0199" in (folder / "miner.log").read_text()  # the live file has the newest
    assert "line 0000" not in text  # the oldest went with the oldest files


def test_rotated_files_can_be_compressed(tmp_path):
    logs.configure(tmp_path / "miner.log", rotation="1 KB", retention=4, compression="gz", stderr=False)
    for i in range(60):
        logger.info(f"line {i:04d} " + "y" * 80)
    logs.close()
    assert len(list(tmp_path.glob("miner.*.log.gz"))) == 3 and (tmp_path / "miner.log").exists()


def test_configuring_twice_does_not_double_the_sinks(tmp_path, capfd):
    log = tmp_path / "miner.log"
    logs.configure(log)
    logs.configure(log)
    logger.info("said once")
    logs.flush()
    assert log.read_text().count("said once") == 1
    assert capfd.readouterr().err.count("said once") == 1


def test_the_log_flags_reach_the_settings(tmp_path):
    args = build_parser().parse_args([
        "--local", "--neuron.state_dir", str(tmp_path), "--logging.rotation", "1 MiB", "--logging.retention", "4",
        "--logging.compression", "gz",
    ])
    settings = settings_from_args(args)
    assert (settings.log_rotation, settings.log_retention, settings.log_compression) == ("1 MiB", 4, "gz")
    assert log_file(settings) == tmp_path / "logs" / "miner-default-default-72-local.log"
    defaults = settings_from_args(build_parser().parse_args([]))
    assert (defaults.log_rotation, defaults.log_retention, defaults.log_compression) == ("50 MB", 10, None)


def test_a_running_miner_logs_each_request_once_to_its_file(tmp_path):
    validator = bt.Keypair.create_from_uri("//Alice").ss58_address
    miner = MinerProcess(tmp_path, "--local.validator_hotkey", validator, "--logging.rotation", "1 MB")
    try:
        image = b64(jpeg_bytes(seed=5))
        results = miner.query([{"synapse": "ImageSynapse", "image": image},
                               {"synapse": "ExtendedImageSynapse", "image": b64(b"no image" * 500)}], {"uri": "//Alice"})["results"]
        assert [r["status_code"] for r in results] == [200, 200]
    finally:
        assert miner.stop() == 0
    text = (tmp_path / "state" / "logs" / "miner-default-default-72-local.log").read_text()
    lines = request_lines(text)
    assert len(lines) == 2, text
    assert f"validator={short_hotkey(validator)} type=ImageSynapse outcome=ok" in lines[0]
    assert f"bytes={len(image)}" in lines[0] and "outcome=rejected:not_an_image" in lines[1]
    assert "log file:" in text and "miner stopped" in text  # the miner's own lines, to the end
    assert not LONG_BASE64.search(text)
    assert len(request_lines(miner.log())) == 2  # and once each on stderr, for pm2


def test_a_miner_that_cannot_start_leaves_the_state_folder_alone(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "neurons" / "miner.py"), "--wallet.path", str(tmp_path / "wallets"),
         "--neuron.state_dir", str(tmp_path / "state"), "--axon.port", str(free_port())],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert done.returncode == 1 and "btcli wallet new_hotkey" in done.stdout + done.stderr
    assert not (tmp_path / "state").exists()


def test_log_flags_are_validated_with_the_rest():
    args = build_parser().parse_args([
        "--logging.rotation", "5 parsecs", "--logging.retention", "0", "--logging.compression", "rar", "--axon.port", "0",
    ])
    with pytest.raises(ConfigError) as raised:
        settings_from_args(args)
    message = str(raised.value)
    for flag in ("--logging.rotation", "--logging.retention", "--logging.compression", "--axon.port"):
        assert flag in message


@pytest.mark.parametrize("text, size", [("50 MB", 50_000_000), ("2KB", 2000), ("1 MiB", 2**20), ("512", 512), ("1.5 gb", 1_500_000_000)])
def test_sizes(text, size):
    assert logs.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "-1 MB", "0 B", "10 parsecs"])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        logs.parse_size(text)
