import json
import signal
import sqlite3
import subprocess
import time

import bittensor as bt
import numpy as np
import pytest

from natix_miner.serving.journal import RequestJournal
from natix_miner.serving.scoring import ValidatorScore
from tests.payloads import b64, jpeg_bytes
from tests.wire.harness import CLIENT, MinerProcess, client_python, client_reply


def test_records_prunes_by_age_and_by_count(tmp_path):
    journal = RequestJournal(tmp_path / "j.sqlite", retention_days=1.0, max_rows=5)
    now = time.time()
    for i in range(8):
        journal.record("5V", "ImageSynapse", 30.0, "lite0", 0.2, "ok", True, ts=now - (3 * 86400 if i < 2 else 0))
    assert journal.count() == 8
    assert journal.prune(now) == 3  # 2 too old, then 1 beyond the 5-row budget
    assert journal.count() == 5 and [r["ts"] for r in journal.rows()][0] == pytest.approx(now)


def test_testnet_replay_matches_the_validator_formula(tmp_path):
    journal = RequestJournal(tmp_path / "j.sqlite")
    rng = np.random.default_rng(0)
    direct = {"5A": ValidatorScore(), "5B": ValidatorScore()}
    expected = {}
    for _ in range(150):
        hotkey = str(rng.choice(["5A", "5B"]))
        label = int(rng.integers(0, 2))
        prediction = float(np.clip(label + rng.normal(0, 0.45), 0, 1))
        journal.record(hotkey, "ImageSynapse", 10.0, "lite0", prediction, "ok", True, testnet_label=label)
        expected[hotkey] = direct[hotkey].record(prediction, label)
    journal.record("5C", "ImageSynapse", 10.0, "lite0", 0.9, "ok", True)  # mainnet: no label, no replay
    replayed = {s.hotkey: s for s in journal.testnet_scores()}
    assert set(replayed) == {"5A", "5B"}
    for hotkey, score in replayed.items():
        assert score.reward == pytest.approx(expected[hotkey])


def test_a_killed_miner_loses_no_answered_request(tmp_path):
    validator = bt.Keypair.create_from_uri("//Alice").ss58_address
    args = ("--local.validator_hotkey", validator, "--blacklist.rate_limit", "100", "--blacklist.rate_burst", "200")
    miner = MinerProcess(tmp_path, *args)
    labelled = [{"synapse": "ImageSynapse", "image": b64(jpeg_bytes(seed=i, roadwork=bool(i % 2))), "testnet_label": i % 2} for i in range(12)]
    first = miner.query(labelled, {"uri": "//Alice"}, concurrency=4)["results"]
    assert [r["status_code"] for r in first] == [200] * 12

    # mid-traffic: a second client is sending when the miner is SIGKILLed
    job = miner.job([{"synapse": "ImageSynapse", "image": b64(jpeg_bytes(seed=100 + i))} for i in range(600)], {"uri": "//Alice"}, concurrency=4, timeout_s=5)
    sender = subprocess.Popen([client_python(), str(CLIENT), "--job", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sender.stdin.write(json.dumps(job))
    sender.stdin.close()
    time.sleep(1.5)
    miner.process.send_signal(signal.SIGKILL)
    miner.process.wait()
    second = client_reply(sender.stdout.read())["results"]
    sender.wait()
    answered_second = sum(1 for r in second if r["status_code"] == 200)
    assert 0 < answered_second < 600, "the kill should land mid-traffic"

    restarted = MinerProcess(tmp_path, *args)  # same wallet and state folder
    try:
        journal_file = next((tmp_path / "state").glob("journal-*.sqlite"))
        rows = sqlite3.connect(journal_file).execute("SELECT prediction, testnet_label FROM requests ORDER BY id").fetchall()
        assert len(rows) >= 12 + answered_second  # everything answered was committed first
        labelled_rows = [(p, y) for p, y in rows if y != -1]
        assert sorted(p for p, _ in labelled_rows) == pytest.approx(sorted(r["prediction"] for r in first))
        replay = ValidatorScore()
        direct = [replay.record(p, y) for p, y in labelled_rows][-1]
        journal = RequestJournal(journal_file)
        assert journal.testnet_scores()[0].reward == pytest.approx(direct)
    finally:
        restarted.stop()


def test_status_shows_chain_figures_and_traffic(tmp_path, capsys):
    from natix_miner.serving.chain import NeuronStanding
    from natix_miner.tools.cli import main

    journal = RequestJournal(tmp_path / "journal-default-default-72.sqlite")
    journal.record_figures(4321, NeuronStanding(7, "5Me", "5Cold", 12.5, False, incentive=0.0123, emission=0.5, validator_trust=0.0))
    for latency in (40.0, 60.0, 80.0):
        journal.record("5Alice", "ImageSynapse", latency, "lite0", 0.8, "ok", True, testnet_label=1)
    journal.record("5Alice", "ImageSynapse", 9500.0, "-", 0.5, "deadline", False, testnet_label=0)
    journal.close()
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "block 4321" in out and "uid 7" in out and "incentive 0.01230" in out
    assert "4 requests" in out and "75.0%" in out  # 3 of 4 ok
    assert "testnet replay for 5Alice" in out
    assert main(["status", "--state-dir", str(tmp_path / "nowhere")]) == 2


def test_report_draws_a_week_of_journal(tmp_path):
    from PIL import Image

    from natix_miner.serving.chain import NeuronStanding
    from natix_miner.tools.cli import main

    journal = RequestJournal(tmp_path / "journal-default-default-323.sqlite")
    rng = np.random.default_rng(3)
    now = time.time()
    for hour in range(7 * 24):
        ts = now - (7 * 24 - hour) * 3600
        journal.record_figures(1000 + hour * 300, NeuronStanding(3, "5Me", "5C", 10.0, False, incentive=0.001 * (1 + hour / 50), emission=0.2 + hour / 500), ts=ts)
        for validator in ("5Alice", "5Bob", "5Carol"):
            label = int(rng.integers(0, 2))
            prediction = float(np.clip(label + rng.normal(0, 0.4), 0, 1))
            outcome = "ok" if rng.random() > 0.03 else "deadline"
            journal.record(validator, "ImageSynapse", float(rng.gamma(2, 40)), "lite0", prediction, outcome, True, label, ts=ts + 60)
    journal.close()
    out = tmp_path / "report.png"
    assert main(["report", "--state-dir", str(tmp_path), "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] >= 1000 and image.size[1] >= 700


def test_a_flush_never_drops_rows_that_arrive_while_it_writes(tmp_path):
    """A full queue being flushed while answers keep arriving: the arrivals push written rows out of
    the queue, and the flush must not then pop the arrivals as if they were written."""
    journal = RequestJournal(tmp_path / "journal.sqlite", queue_rows=3)
    journal.problem = "disk full (simulated)"  # writers queue, as while the journal cannot be written
    for i in range(3):
        journal.record("hk", "ImageSynapse", float(i), "lite0", 0.5, "answered", True)
    journal.problem = None  # repaired: the sync loop flushes, while two more answers arrive
    guarded = journal._guarded

    def writing_while_two_arrive(work, default):
        journal.problem = "still flushing"  # the arrivals saw a degraded journal: they queue
        for i in (3, 4):
            journal.record("hk", "ImageSynapse", float(i), "lite0", 0.5, "answered", True)
        journal.problem = None
        return guarded(work, default)

    journal._guarded = writing_while_two_arrive
    with journal._lock:
        journal._flush_queue()
    journal._guarded = guarded
    journal.maintain()
    assert sorted(row["latency_ms"] for row in journal.rows()) == [0.0, 1.0, 2.0, 3.0, 4.0]
