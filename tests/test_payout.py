"""Is the subnet paying? Validators' weights -> one sentence, in status, doctor, metrics and the log."""

import re
import time

import bittensor as bt
import pytest
from prometheus_client import generate_latest

from natix_miner.serving.cadence import FAR_PAST, expected_interval_s, quiet
from natix_miner.serving.chain import ChainSnapshot, NeuronStanding, RealChain, SubnetWeights
from natix_miner.tools.cli import main
from natix_miner.serving.journal import RequestJournal
from natix_miner.serving.local_chain import MAX_WEIGHT, build_local_chain
from natix_miner.serving.metrics import MinerMetrics
from natix_miner.serving.payout import NOT_PAYING, PAYING, UNKNOWN, PayoutLedger, assess, sentence
from natix_miner.serving.subnet_watch import SubnetWatch

ME = "5Me"
OWNER = "5Owner"


def subnet(stakes: dict[int, float], permits: set[int]) -> ChainSnapshot:
    """uid 0 the owner, uid 1 this miner, the rest as given."""
    hotkeys = {0: OWNER, 1: ME}
    neurons = [NeuronStanding(uid, hotkeys.get(uid, f"5N{uid}"), "5C", stake, uid in permits) for uid, stake in stakes.items()]
    return ChainSnapshot.build(72, 1000, neurons)


def test_owner_only_weights_are_a_halt():
    snapshot = subnet({0: 0.0, 1: 0.0, 2: 0.0, 3: 980.0, 4: 20.0}, permits={3, 4})
    weights = SubnetWeights(1000, OWNER, {3: {0: 65535.0}, 4: {1: 30000.0, 2: 35535.0}})
    view = assess(snapshot, weights, ME)
    assert view.state == NOT_PAYING and view.owner_uid == 0 and view.validators == 2
    assert view.owner_only_share == pytest.approx(0.98) and view.paying_share == pytest.approx(0.02)
    assert view.own_share == pytest.approx(0.02 * 30000 / 65535)
    assert sentence(view, since_block=900, seen_change=True) == (
        "SN72 is not paying miners: validators holding 98% of stake put all weight on uid 0 (the subnet owner) "
        "since block 900; this miner earns nothing now")


def test_mixed_weights_pay_when_most_stake_weights_miners():
    snapshot = subnet({0: 0.0, 1: 0.0, 2: 0.0, 3: 600.0, 4: 300.0, 5: 100.0, 6: 5000.0}, permits={3, 4, 5})
    weights = SubnetWeights(1000, OWNER, {
        3: {0: 1.0, 1: 1.0, 2: 2.0},  # a quarter to this miner, a quarter burned
        4: {1: 3.0, 2: 1.0},
        5: {0: 7.0},
        6: {1: 9.0},  # no validator permit: does not count, however much stake
    })
    view = assess(snapshot, weights, ME)
    assert view.state == PAYING
    assert view.paying_share == pytest.approx((600 * 0.75 + 300) / 1000)
    assert view.own_share == pytest.approx((600 * 0.25 + 300 * 0.75) / 1000)
    assert view.owner_only_share == pytest.approx(0.1)
    assert sentence(view, since_block=950) == (
        "SN72 is paying miners: 75% of validator stake weights miners other than uid 0 (the subnet owner) since block 950 "
        "or earlier; this miner gets 38% of the validators' weight")


def test_a_paying_minority_is_not_enough_for_consensus():
    snapshot = subnet({0: 0.0, 1: 0.0, 3: 400.0, 4: 600.0}, permits={3, 4})
    view = assess(snapshot, SubnetWeights(1000, OWNER, {3: {1: 1.0}, 4: {0: 1.0, 1: 1.0}}), ME)
    assert view.paying_share == pytest.approx(0.7) and view.state == PAYING
    view = assess(snapshot, SubnetWeights(1000, OWNER, {3: {1: 1.0}, 4: {0: 5.0, 1: 1.0}}), ME)
    assert view.paying_share == pytest.approx(0.5) and view.state == NOT_PAYING and view.owner_only_share == 0.0
    assert "only 50% of validator stake weights miners other than uid 0" in sentence(view)


def test_zero_stake_or_no_weights_leaves_it_unknown():
    snapshot = subnet({0: 0.0, 1: 0.0, 3: 0.0, 4: 0.0}, permits={3, 4})
    view = assess(snapshot, SubnetWeights(1000, OWNER, {3: {1: 1.0}, 4: {0: 1.0}}), ME)
    assert view.state == UNKNOWN and view.validators == 0
    assert sentence(view) == "whether SN72 pays miners is unknown: no validator with a permit and stake has set weights (at block 1000)"
    staked = subnet({0: 0.0, 1: 0.0, 3: 50.0}, permits={3})
    assert assess(staked, SubnetWeights(1000, OWNER, {3: {}}), ME).state == UNKNOWN  # an empty row is no weight


def test_real_chain_reads_weights_and_the_owner_from_subtensor():
    class Subtensor:  # the calls bt.Subtensor 10.5 answers, with the shapes it returns
        def get_current_block(self):
            return 5_000_123

        def weights(self, netuid, block=None):
            assert (netuid, block) == (72, 5_000_123)
            return [(3, [(0, 65535)]), (4, [(1, 100), (2, 200)])]

        def get_subnet_owner_hotkey(self, netuid, block=None):
            assert (netuid, block) == (72, 5_000_123)
            return OWNER

    weights = RealChain(Subtensor(), "finney").weights(72)
    assert weights == SubnetWeights(5_000_123, OWNER, {3: {0: 65535.0}, 4: {1: 100.0, 2: 200.0}})


def test_real_chain_counts_serving_uids_from_the_metagraph():
    import numpy as np
    from types import SimpleNamespace

    def axon(ip):
        return bt.AxonInfo(version=1, ip=ip, port=8091, ip_type=4, hotkey="h", coldkey="c")

    graph = SimpleNamespace(
        uids=np.array([0, 1, 2]), hotkeys=[OWNER, ME, "5V"], coldkeys=["c"] * 3, S=np.array([0.0, 1.0, 900.0]),
        validator_permit=np.array([False, False, True]), I=np.zeros(3), E=np.zeros(3), Tv=np.zeros(3),
        block=np.int64(77), axons=[axon("0.0.0.0"), axon("203.0.113.5"), axon("203.0.113.9")],
    )
    subtensor = SimpleNamespace(metagraph=lambda netuid, lite: graph)
    snapshot = RealChain(subtensor, "finney").snapshot(72)
    assert [snapshot.by_hotkey[h].serving for h in (OWNER, ME, "5V")] == [False, True, True]
    assert snapshot.block == 77 and snapshot.by_hotkey["5V"].validator_permit


def test_the_local_chain_halts_and_pays():
    validator = bt.Keypair.create_from_uri("//Alice").ss58_address
    chain = build_local_chain(72, ME, "5MeCold", [validator], 10_000.0, "halted")
    owner_uid = chain.uid_for_hotkey(72, chain.owner_hotkey)
    assert (chain.uid_for_hotkey(72, ME), owner_uid) == (0, 2)
    assert chain.weights(72).rows == {1: {owner_uid: float(MAX_WEIGHT)}}
    chain.subnet_state = "paying"
    assert chain.weights(72).rows == {1: {0: float(MAX_WEIGHT)}}  # the only miner gets it all
    with pytest.raises(ValueError, match="not one of paying, halted"):
        build_local_chain(72, ME, "5MeCold", [], 1.0, "stopped")


def test_the_ledger_says_since_when_across_restarts(tmp_path):
    snapshot = subnet({0: 0.0, 1: 0.0, 3: 100.0}, permits={3})
    halted, paying = SubnetWeights(100, OWNER, {3: {0: 1.0}}), SubnetWeights(100, OWNER, {3: {1: 1.0}})
    ledger = PayoutLedger(tmp_path / "payout.sqlite")
    at = lambda block, weights: assess(ChainSnapshot.build(72, block, list(snapshot.by_hotkey.values())),  # noqa: E731
                                       SubnetWeights(block, weights.owner_hotkey, weights.rows), ME)
    first = ledger.record(at(100, halted), serving=10)
    assert (first.since_block, first.seen_change) == (100, False) and "since block 100 or earlier" in first.sentence()
    assert ledger.record(at(150, halted), serving=10).since_block == 100
    ledger.close()
    ledger = PayoutLedger(tmp_path / "payout.sqlite")  # a restart
    changed = ledger.record(at(200, paying), serving=10)
    assert (changed.since_block, changed.seen_change) == (200, True)
    assert changed.sentence().startswith("SN72 is paying miners") and "since block 200;" in changed.sentence()
    assert ledger.changes() == [(100, NOT_PAYING), (200, PAYING)]


def test_the_quiet_validator_warning():
    assert expected_interval_s(250) == pytest.approx(25 * 63.0)  # ~26 min, as FACTS.md works out
    now = 100_000.0
    fine = quiet(now - 1200, now - 86_400, serving=250, now=now)
    assert not fine.overdue and fine.line(250).startswith("last validator request 20 min ago;")
    late = quiet(now - 3 * 3600, now - 86_400, serving=250, now=now)
    assert late.overdue and late.line(250).startswith("WARNING: last validator request 3.0 h ago, silent for 3.0 h, over 3x the ~26 min")
    assert "check that validators can reach the axon" in late.line(250)
    assert "stopped querying miners at the halt" in late.line(250, subnet_halted=True)
    restarted = quiet(now - 3 * 3600, now - 600, serving=250, now=now)  # silence while the miner was down is not theirs
    assert not restarted.overdue and restarted.last_request_s == pytest.approx(3 * 3600)
    never = quiet(None, now - FAR_PAST * 63.0 - 1, serving=5, now=now)
    assert never.overdue and never.line(5).startswith("WARNING: no validator request yet")


def run_watch(tmp_path, state: str, last_request_age_s: float | None, up_for_s: float = 0.0):
    """What a miner up for `up_for_s` does at each sync, on a local chain in `state`; then the journal."""
    validator = bt.Keypair.create_from_uri("//Alice").ss58_address
    chain = build_local_chain(72, ME, "5MeCold", [validator], 10_000.0, state)
    journal = RequestJournal(tmp_path / "journal-miner-hot-72-local.sqlite")
    if last_request_age_s is not None:
        journal.record(validator, "ImageSynapse", 30.0, "lite0", 0.9, "ok", True, ts=time.time() - last_request_age_s)
    metrics = MinerMetrics()
    clock = [time.time() - up_for_s]
    watch = SubnetWatch(tmp_path / "payout-miner-hot-72-local.sqlite", ME, metrics, journal_path=journal.path, clock=lambda: clock[0])
    clock[0] = time.time()
    watch.observe(chain, chain.snapshot(72))
    watch.close()
    journal.close()
    return chain, metrics


def gauges(metrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    return {f"{name}:{figure}": float(value) for name, figure, value in re.findall(r'^natix_(subnet_payout|validator_requests)\{figure="(\w+)"\} (\S+)$', text, re.M)}


def test_status_on_a_halted_local_chain(tmp_path, capsys):
    chain, metrics = run_watch(tmp_path, "halted", last_request_age_s=None)
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    owner = chain.uid_for_hotkey(72, chain.owner_hotkey)
    assert (f"SN72 is not paying miners: validators holding 100% of stake put all weight on uid {owner} (the subnet owner) "
            "since block 0 or earlier; this miner earns nothing now") in out
    assert "no validator request yet" in out
    figures = gauges(metrics)
    assert figures["subnet_payout:paying"] == 0.0 and figures["subnet_payout:owner_only_share"] == 1.0
    assert figures["subnet_payout:own_share"] == 0.0


def test_status_on_a_paying_local_chain_warns_of_quiet_validators(tmp_path, capsys):
    chain, metrics = run_watch(tmp_path, "paying", last_request_age_s=2 * 3600, up_for_s=3 * 3600)
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    owner = chain.uid_for_hotkey(72, chain.owner_hotkey)
    assert (f"SN72 is paying miners: 100% of validator stake weights miners other than uid {owner} (the subnet owner) since block 0 "
            "or earlier; this miner gets 100% of the validators' weight") in out
    assert "WARNING: last validator request 2.0 h ago" in out and "check that validators can reach the axon" in out
    figures = gauges(metrics)
    assert figures["subnet_payout:paying"] == 1.0 and figures["subnet_payout:own_share"] == 1.0
    assert figures["validator_requests:overdue"] == 1.0 and figures["validator_requests:seconds_since_last"] >= 7200


def test_the_watch_logs_at_start_on_a_change_and_hourly(tmp_path, monkeypatch):
    from natix_miner.serving import subnet_watch

    lines = []
    monkeypatch.setattr(subnet_watch.logger, "info", lines.append)
    monkeypatch.setattr(subnet_watch.logger, "warning", lines.append)
    clock = [1_000_000.0]
    chain = build_local_chain(72, ME, "5MeCold", [bt.Keypair.create_from_uri("//Alice").ss58_address], 10_000.0, "paying")
    watch = SubnetWatch(tmp_path / "payout.sqlite", ME, clock=lambda: clock[0], last_request=lambda: clock[0])
    watch.observe(chain, chain.snapshot(72))
    assert len(lines) == 1 and lines[0].startswith("SN72 is paying miners")  # the start-up line
    clock[0] += 700
    watch.observe(chain, chain.snapshot(72))
    assert len(lines) == 1  # same state, within the hour: quiet
    chain.subnet_state = "halted"
    clock[0] += 700
    watch.observe(chain, chain.snapshot(72))
    assert len(lines) == 2 and lines[1].startswith("SN72 is not paying miners") and "since block 0;" in lines[1]
    clock[0] += 3600
    watch.observe(chain, chain.snapshot(72))
    assert len(lines) == 3 and lines[2] == lines[1]  # hourly


def test_a_failing_chain_keeps_the_last_view(tmp_path):
    chain = build_local_chain(72, ME, "5MeCold", [bt.Keypair.create_from_uri("//Alice").ss58_address], 10_000.0, "halted")
    clock = [0.0]
    watch = SubnetWatch(tmp_path / "payout.sqlite", ME, clock=lambda: clock[0])
    watch.observe(chain, chain.snapshot(72))

    def refuse(netuid):
        raise ConnectionError("websocket closed")

    chain.weights = refuse
    clock[0] += 3600
    watch.observe(chain, chain.snapshot(72))  # no exception
    assert watch.observed.view.state == NOT_PAYING


ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"  # //Alice


@pytest.mark.parametrize("state, status, text", [
    ("halted", "WARN", "SN72 is not paying miners: validators holding 100% of stake put all weight on uid 2 (the subnet owner) "
                       "at block 0; this miner earns nothing now"),
    ("paying", "OK", "SN72 is paying miners: 100% of validator stake weights miners other than uid 2 (the subnet owner) "
                     "at block 0; this miner gets 100% of the validators' weight"),
])
def test_doctor_on_a_local_chain_says_whether_it_pays(capsys, tmp_path, state, status, text):
    from tests.test_doctor import doctor, free_port

    code, out, lines = doctor(capsys, tmp_path, free_port(), "--local", "--local.subnet_state", state, "--local.validator_hotkey", ALICE)
    assert code == 0, out
    assert lines["payout"].startswith(status) and f"local mode: {text}" in lines["payout"]
    assert ("nothing to fix on this machine" in lines["payout"]) == (state == "halted")
    assert lines["requests"].startswith("OK") and "no record of a run" in lines["requests"]


def test_doctor_warns_of_quiet_validators_from_the_miners_record(capsys, tmp_path):
    from tests.test_doctor import doctor, free_port

    (tmp_path / "state").mkdir()
    run_watch(tmp_path / "state", "paying", last_request_age_s=5 * 3600, up_for_s=6 * 3600)
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--local", "--local.validator_hotkey", ALICE)
    assert code == 0, out
    assert lines["requests"].startswith("WARN") and "last validator request 5.0 h ago, silent for 5.0 h" in lines["requests"]


def test_a_local_miner_says_it_is_halted_and_harvests_testnet_images(tmp_path, capsys):
    from tests.payloads import b64, jpeg_bytes
    from tests.wire.harness import MinerProcess

    miner = MinerProcess(tmp_path, "--local.validator_hotkey", ALICE, "--local.subnet_state", "halted",
                         "--neuron.harvest_dir", str(tmp_path / "harvest"), "--neuron.harvest_max_mb", "1")
    try:
        requests = [{"synapse": "ImageSynapse", "image": b64(jpeg_bytes(seed=i, roadwork=bool(i % 2))), "testnet_label": i % 2} for i in range(4)]
        results = miner.query(requests, {"uri": "//Alice"})["results"]
        assert [r["status_code"] for r in results] == [200] * 4
    finally:
        miner.stop()
    assert re.search(r"SN72 is not paying miners: validators holding 100% of stake put all weight on uid 2 \(the subnet owner\) "
                     r"since block \d+ or earlier; this miner earns nothing now", miner.log())  # the start-up line
    assert sorted(p.parent.name for p in (tmp_path / "harvest").rglob("*.jpg")) == ["none", "none", "roadwork", "roadwork"]
    assert main(["status", "--state-dir", str(tmp_path / "state")]) == 0
    out = capsys.readouterr().out
    assert "SN72 is not paying miners" in out and re.search(r"last validator request \d+ s ago; one validator's schedule", out)


def test_the_flags_reach_the_settings(tmp_path):
    from cascade.config import ConfigError
    from natix_miner.serving.config import build_parser, settings_from_args

    parse = lambda *extra: settings_from_args(build_parser().parse_args(["--local", *extra]))  # noqa: E731
    settings = parse("--local.subnet_state", "halted", "--neuron.harvest_dir", str(tmp_path / "h"), "--neuron.harvest_max_mb", "1.5",
                     "--active.max_mb", "2")
    assert settings.local_subnet_state == "halted" and settings.harvest_dir == tmp_path / "h"
    assert settings.harvest_max_bytes == int(1.5 * 1024**2) and settings.active_max_bytes == 2 * 1024**2
    assert parse().local_subnet_state == "paying" and parse().harvest_dir is None
    with pytest.raises(ConfigError, match="--neuron.harvest_max_mb 0 must be more than 0"):
        parse("--neuron.harvest_max_mb", "0")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--local.subnet_state", "stopped"])


def test_status_survives_a_damaged_payout_record(tmp_path, capsys):
    RequestJournal(tmp_path / "journal-miner-hot-72.sqlite").close()
    (tmp_path / "payout-miner-hot-72.sqlite").write_bytes(b"not a database" * 100)
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    assert "payout: not recorded yet" in capsys.readouterr().out


def test_doctor_in_real_mode_reads_the_payout_from_the_same_chain(capsys, tmp_path, monkeypatch):
    from natix_miner.tools import doctor as doctor_module
    from natix_miner.serving.wallet import load_wallet
    from tests.test_doctor import PUBLIC_IP, doctor, free_port

    wallet = load_wallet("miner", "hot", str(tmp_path / "wallets"), create_missing=True)
    chain = build_local_chain(72, wallet.hotkey.ss58_address, wallet.coldkeypub.ss58_address, [ALICE], 10_000.0, "halted")
    monkeypatch.setattr(doctor_module, "connect_real_chain", lambda network, attempts: chain)
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--axon.external_ip", PUBLIC_IP)
    assert lines["registration"].startswith("OK") and "uid 0 on netuid 72" in lines["registration"]
    assert lines["payout"].startswith("WARN") and "SN72 is not paying miners: validators holding 100% of stake" in lines["payout"]
    chain.subnet_state = "paying"
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--axon.external_ip", PUBLIC_IP)
    assert lines["payout"].startswith("OK") and "this miner gets 100% of the validators' weight" in lines["payout"]
