import pytest

from natix_miner.errors import SetupError
from natix_miner.serving.wallet import load_wallet


def test_real_mode_never_creates_keys(tmp_path):
    with pytest.raises(SetupError) as caught:
        load_wallet("miner", "hot", str(tmp_path), create_missing=False)
    assert "btcli wallet new_hotkey" in str(caught.value)
    assert not any(tmp_path.rglob("*"))


def test_local_mode_creates_then_reuses_keys(tmp_path):
    first = load_wallet("miner", "hot", str(tmp_path), create_missing=True)
    again = load_wallet("miner", "hot", str(tmp_path), create_missing=False)
    assert first.hotkey.ss58_address == again.hotkey.ss58_address


def test_missing_coldkeypub_is_explained(tmp_path):
    wallet = load_wallet("miner", "hot", str(tmp_path), create_missing=True)
    for name in ("coldkeypub.txt", "coldkey"):
        (tmp_path / "miner" / name).unlink()
    with pytest.raises(SetupError, match="regen_coldkeypub"):
        load_wallet("miner", "hot", str(tmp_path), create_missing=False)
    assert wallet  # the hotkey alone is not enough to serve
