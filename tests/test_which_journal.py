"""Issue 16, item 2: status and report read the journal of the miner the operator means (the miner's
flags, else miner.env), say whose they read, and count the requests refused before the forward."""

import os

import pytest

from natix_miner.tools.cli import main
from natix_miner.serving.journal import RequestJournal, journal_path, state_name_of
from natix_miner.tools.report import draw

ALICE, BOB, LOCAL = ("alice", "h1", 323, False), ("bob", "h2", 323, False), ("default", "default", 72, True)
VALIDATOR = "5Validator"


@pytest.fixture
def state(tmp_path, monkeypatch):
    """Three miners' journals in one folder: alice answered 3 and refused 457 (rate limit) and 3
    strangers; bob answered 5; a local-mode run answered 2. The working directory has no miner.env."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINER_ENV", raising=False)
    folder = tmp_path / "state"
    for who, answered in ((ALICE, 3), (BOB, 5), (LOCAL, 2)):
        journal = RequestJournal(journal_path(folder, state_name_of(*who)))
        for _ in range(answered):
            journal.record(VALIDATOR, "ImageSynapse", 50.0, "lite0", 0.9, "ok", True)
        if who is ALICE:
            journal.record_refusals({("rate_limited", VALIDATOR): 457, ("unregistered", ""): 3})
        journal.close()
    os.utime(journal_path(folder, state_name_of(*BOB)), (1, 1))  # bob's .sqlite is the oldest: mtime must not matter
    return folder


def status(capsys, *flags):
    code = main(["status", *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_several_journals_and_nothing_said_lists_them_with_the_flags_that_choose_each(state, capsys):
    code, out, err = status(capsys, "--state-dir", str(state))
    assert code == 2 and out == ""
    assert "3 miners' journals" in err
    assert "--wallet.name alice --wallet.hotkey h1 --netuid 323" in err
    assert "--wallet.name bob --wallet.hotkey h2 --netuid 323" in err
    assert "--wallet.name default --wallet.hotkey default --netuid 72 --local" in err


def test_status_by_the_miners_flags_names_it_and_counts_refusals_beside_ok(state, capsys):
    code, out, _ = status(capsys, "--neuron.state_dir", str(state), "--wallet.name", "alice", "--wallet.hotkey", "h1", "--netuid", "323")
    first = out.splitlines()[0]
    assert code == 0 and "wallet alice, hotkey h1, netuid 323" in first and "journal-alice-h1-323.sqlite" in first
    assert "463 requests, 3 answered, 460 refused before the forward (rate_limited 457, unregistered 3)" in out
    validator_line = next(line for line in out.splitlines() if line.strip().startswith(VALIDATOR))
    assert validator_line.split()[1:4] == ["460", "0.7%", "457"]  # requests, ok share of them all, refused
    assert "100.0%" not in out
    assert "journal-bob" not in out and "journal-default" not in out  # one miner, not every journal in the folder

    code, out, _ = status(capsys, "--state-dir", str(state), "--local")
    assert code == 0 and "wallet default, hotkey default, netuid 72, local mode" in out.splitlines()[0]
    assert "2 requests, 2 answered, 0 refused" in out


def test_miner_env_chooses_and_flags_override_it(state, tmp_path, capsys):
    (tmp_path / "miner.env").write_text('NETUID=323   # testnet\nSUBTENSOR_NETWORK=test\nWALLET_NAME=bob\nWALLET_HOTKEY="h2"\n')
    code, out, _ = status(capsys, "--state-dir", str(state))
    assert code == 0 and "wallet bob, hotkey h2, netuid 323" in out.splitlines()[0] and "chosen by miner.env" in out.splitlines()[0]

    code, out, _ = status(capsys, "--state-dir", str(state), "--wallet.name", "alice", "--wallet.hotkey", "h1")
    assert code == 0 and "wallet alice, hotkey h1, netuid 323" in out.splitlines()[0]  # the netuid still from miner.env

    other = tmp_path / "elsewhere.env"
    other.write_text("LOCAL=true\n")  # run_miner.sh's local mode: the default wallet, netuid 72
    code, out, _ = status(capsys, "--state-dir", str(state), "--env", str(other))
    assert code == 0 and "netuid 72, local mode" in out.splitlines()[0]

    other.write_text("NETUID=seventytwo\n")
    code, _, err = status(capsys, "--state-dir", str(state), "--env", str(other))
    assert code == 2 and "sets NETUID='seventytwo', not a number" in err


def test_a_miner_with_no_journal_there_is_named_with_what_exists(state, capsys):
    code, _, err = status(capsys, "--state-dir", str(state), "--wallet.name", "carol", "--netuid", "323")
    assert code == 2 and "no journal for wallet carol, hotkey default, netuid 323" in err
    assert "journal-alice-h1-323.sqlite: --wallet.name alice" in err


def test_report_plots_the_chosen_miner_and_says_whose_it_is(state, tmp_path, capsys):
    (tmp_path / "miner.env").write_text("NETUID=323\nWALLET_NAME=alice\nWALLET_HOTKEY=h1\n")
    out = tmp_path / "report.png"
    assert main(["report", "--state-dir", str(state), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert out.is_file() and "wallet alice, hotkey h1, netuid 323" in said and "journal-alice-h1-323.sqlite" in said

    journal = RequestJournal(journal_path(state, state_name_of(*ALICE)), read_only=True)
    try:
        title = draw(journal, 1.0, whose="wallet alice, hotkey h1, netuid 323")._suptitle.get_text()
    finally:
        journal.close()
    assert "wallet alice, hotkey h1, netuid 323" in title and "3 answered, 460 refused" in title


def test_refusals_are_kept_per_sync_through_the_journals_guarded_writes(tmp_path):
    from natix_miner.serving.chain import ChainSnapshot, NeuronStanding
    from natix_miner.serving.guard import Guard, GuardPolicy
    from tests.clock import FakeClock
    from tests.test_guard import request_from

    guard = Guard(GuardPolicy(rate_per_s=1.0, burst=2), ChainSnapshot.build(72, 1, [NeuronStanding(0, VALIDATOR, "ck", 5000.0, True)]),
                  clock=FakeClock())
    for _ in range(5):
        guard.check(request_from(VALIDATOR))  # 2 allowed, 3 rate-limited
    guard.check(request_from("5Stranger"))
    journal = RequestJournal(tmp_path / "journal.sqlite")
    journal.record_refusals(guard.take_refusals(), ts=100.0)
    journal.record_refusals(guard.take_refusals(), ts=200.0)  # nothing new: nothing written
    guard.check(request_from(VALIDATOR))
    journal.record_refusals(guard.take_refusals(), ts=300.0)
    assert journal.refusals() == {("rate_limited", VALIDATOR): 4, ("unregistered", ""): 1}  # a stranger's claimed name is not kept
    assert journal.refusals(since=250.0) == {("rate_limited", VALIDATOR): 1}
    journal.close()


def test_a_journal_from_before_refusals_were_kept_reads_as_none_refused(tmp_path):
    import sqlite3

    path = tmp_path / "journal-old-miner-72.sqlite"
    RequestJournal(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE refusals")
    journal = RequestJournal(path, read_only=True)
    assert journal.refusals() == {} and journal.problem is None
    journal.close()


def test_the_tools_defaults_are_the_miners():
    from natix_miner.tools import which_journal
    from natix_miner.serving.config import build_parser

    args = build_parser().parse_args([])
    assert (getattr(args, "wallet.name"), getattr(args, "wallet.hotkey"), args.netuid, getattr(args, "neuron.state_dir")) == (
        which_journal.DEFAULT_WALLET, which_journal.DEFAULT_HOTKEY, which_journal.DEFAULT_NETUID, which_journal.DEFAULT_STATE_DIR)


def test_miner_env_keys_agree_between_the_example_run_miner_sh_and_the_tools():
    """The example's keys are all ones run_miner.sh reads (HARVEST_DIR was read but warned about as
    unknown), and those the tools read to find the journal are among them."""
    import re

    from natix_miner.tools.which_journal import read_env
    from tests.wire.harness import REPO

    script = (REPO / "run_miner.sh").read_text()
    known = set(re.search(r'KNOWN_KEYS="([^"]*)"', script)[1].split())
    example = (REPO / "miner.env.example").read_text().replace("# LOCAL=true", "LOCAL=true")
    example_keys = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    assert example_keys and example_keys <= known, example_keys - known
    assert {"NETUID", "WALLET_NAME", "WALLET_HOTKEY", "LOCAL"} <= known
    for key in known - {"LOCAL"}:
        assert f"${{{key}" in script  # each known key is used, not only listed
    assert read_env(REPO / "miner.env.example")["NETUID"] == "323"  # bash's reading: the comment after the value is dropped
