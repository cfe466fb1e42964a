import json

import pytest

from natix_miner.tools.cli import main
from natix_miner.tools.model_card import build_card
from natix_miner.serving.wallet import load_wallet


def test_card_has_exactly_the_fields_sn72_requires():
    card = build_card("roadwork-lite0", "EfficientNet-Lite0", "1.2.3", "5Hotkey", now=1_700_000_000.7)
    assert card == {"model_name": "roadwork-lite0", "description": "EfficientNet-Lite0", "version": "1.2.3",
                    "submitted_by": "5Hotkey", "submission_time": 1_700_000_000}
    with pytest.raises(ValueError, match="X.Y.Z"):
        build_card("m", "", "1.2", "5Hotkey")


def test_cli_writes_the_card_for_the_wallets_hotkey(tmp_path, capsys):
    wallet = load_wallet("miner", "hot", str(tmp_path / "wallets"), create_missing=True)
    import shutil

    from cascade.config import load_config

    config = load_config("cpu-default")
    model = tmp_path / "model"
    shutil.copytree(config.model_folder(config.tiers[0]), model)
    code = main(["model-card", "--model-dir", str(model), "--model-name", "lite0", "--version", "0.1.0",
                 "--wallet.name", "miner", "--wallet.hotkey", "hot", "--wallet.path", str(tmp_path / "wallets")])
    assert code == 0
    card = json.loads((model / "model_card.json").read_text())
    assert card["submitted_by"] == wallet.hotkey.ss58_address and card["version"] == "0.1.0"


def test_cli_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    code = main(["model-card", "--model-dir", str(tmp_path), "--model-name", "x", "--version", "1.0.0"])
    assert code == 2 and "manifest.yaml" in capsys.readouterr().err
