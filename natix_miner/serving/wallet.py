"""Load the operator's wallet. Keys are only ever created in local mode."""

from __future__ import annotations

from pathlib import Path

import bittensor as bt

from ..errors import SetupError


def load_wallet(name: str, hotkey: str, path: str, create_missing: bool) -> bt.Wallet:
    wallet = bt.Wallet(name=name, hotkey=hotkey, path=path)
    hotkey_file = Path(wallet.hotkey_file.path)
    coldkeypub_file = Path(wallet.coldkeypub_file.path)
    if create_missing and not hotkey_file.exists():
        # Local mode only: unencrypted throwaway keys, so nothing prompts for a password.
        if not coldkeypub_file.exists():
            wallet.create_new_coldkey(use_password=False, overwrite=False, suppress=True)
        wallet.create_new_hotkey(use_password=False, overwrite=False, suppress=True)
        bt.logging.info(f"local mode: created wallet {name}/{hotkey} under {path}")
    if not hotkey_file.exists():
        raise SetupError(
            f"wallet hotkey {name}/{hotkey} not found at {hotkey_file}: create it with "
            f"`btcli wallet new_hotkey --wallet.name {name} --wallet.hotkey {hotkey}` "
            "or point --wallet.name/--wallet.hotkey/--wallet.path at your keys"
        )
    try:
        wallet.hotkey  # decrypts/reads the keyfile now, not on the first request
    except Exception as exc:
        raise SetupError(f"cannot read hotkey {hotkey_file}: {exc}") from None
    if not coldkeypub_file.exists():
        raise SetupError(
            f"coldkeypub for wallet {name} not found at {coldkeypub_file}: regenerate it with "
            f"`btcli wallet regen_coldkeypub --wallet.name {name}`"
        )
    return wallet
