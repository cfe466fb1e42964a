#!/usr/bin/env bash
# Install the miner (first run only) and start it. Extra arguments are passed to neurons/miner.py.
#
#   ./run_miner.sh                  no miner.env: LOCAL MODE, an in-process chain, nothing to register
#   cp miner.env.example miner.env  then edit it: testnet or mainnet with your wallet
#   pm2 start ecosystem.config.js   the same, kept alive by pm2
#   ./run_miner.sh --axon.port 8092 any flag of neurons/miner.py (see --help) is passed on, after miner.env's
# MINER_ENV=/path/to/file picks another settings file than ./miner.env.
set -euo pipefail
cd "$(dirname "$0")"

MINER_ENV=${MINER_ENV:-miner.env}
KNOWN_KEYS="NETUID SUBTENSOR_NETWORK SUBTENSOR_CHAIN_ENDPOINT WALLET_NAME WALLET_HOTKEY WALLET_PATH MINER_AXON_PORT
MODEL_URL CASCADE_CONFIG IMAGE_DETECTOR_DEVICE BLACKLIST_FORCE_VALIDATOR_PERMIT HARVEST_DIR LOCAL"
if [ -f "$MINER_ENV" ]; then
  # A mistyped key would be ignored without a word: name it, and the keys that are read.
  for key in $(sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$MINER_ENV"); do
    case " $(echo $KNOWN_KEYS) " in
      *" $key "*) ;;
      *) echo "run_miner.sh: WARNING: $MINER_ENV sets $key, which nothing reads (known keys: $(echo $KNOWN_KEYS))" >&2 ;;
    esac
  done
  set -a; source "$MINER_ENV"; set +a
fi

# Install (first run, or a preset needing an extra not installed yet) what the cascade declares in
# `requires:`: cpu-default needs the base only (no torch); a --config among the arguments wins.
config=${CASCADE_CONFIG:-cpu-default}
previous=""
for arg in "$@"; do
  case "$arg" in --config=*) config=${arg#--config=} ;; esac
  [ "$previous" = "--config" ] && config=$arg
  previous=$arg
done
scripts/setup_venv.sh --config "$config"

args=(--axon.port "${MINER_AXON_PORT:-8091}" --config "${CASCADE_CONFIG:-cpu-default}")
[ -n "${MODEL_URL:-}" ] && args+=(--model_url "$MODEL_URL")
[ -n "${IMAGE_DETECTOR_DEVICE:-}" ] && args+=(--neuron.image_detector_device "$IMAGE_DETECTOR_DEVICE")
[ -n "${BLACKLIST_FORCE_VALIDATOR_PERMIT:-}" ] && args+=(--blacklist.force_validator_permit "$BLACKLIST_FORCE_VALIDATOR_PERMIT")
[ -n "${HARVEST_DIR:-}" ] && args+=(--neuron.harvest_dir "$HARVEST_DIR")

if [ -f "$MINER_ENV" ] && [ "${LOCAL:-false}" != "true" ]; then
  echo "run_miner.sh: settings from $MINER_ENV: netuid ${NETUID:-?} on ${SUBTENSOR_NETWORK:-finney}"
  args+=(
    --netuid "${NETUID:?set NETUID in miner.env: 72 mainnet, 323 testnet}"
    --subtensor.network "${SUBTENSOR_NETWORK:-finney}"
    --wallet.name "${WALLET_NAME:?set WALLET_NAME in miner.env}"
    --wallet.hotkey "${WALLET_HOTKEY:?set WALLET_HOTKEY in miner.env}"
  )
  [ -n "${SUBTENSOR_CHAIN_ENDPOINT:-}" ] && args+=(--subtensor.chain_endpoint "$SUBTENSOR_CHAIN_ENDPOINT")
  [ -n "${WALLET_PATH:-}" ] && args+=(--wallet.path "$WALLET_PATH")
else
  # Local mode: throwaway keys in ./local-wallets, loopback only, and the well-known dev key //Alice
  # registered as a validator so `python -m natix_miner.tools.client --ready-file local-wallets/ready.json` can ask.
  if [ -f "$MINER_ENV" ]; then
    echo "run_miner.sh: $MINER_ENV sets LOCAL=true, starting in LOCAL MODE (in-process chain, nothing on the real network)"
  else
    echo "run_miner.sh: no $MINER_ENV, starting in LOCAL MODE (in-process chain, nothing on the real network)"
  fi
  args+=(
    --local --netuid "${NETUID:-72}" --axon.ip 127.0.0.1
    --wallet.path "$PWD/local-wallets"
    --local.validator_hotkey 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY
    --local.ready_file "$PWD/local-wallets/ready.json"
  )
fi

# exec: pm2's stop signal reaches the miner itself, which shuts down cleanly.
exec .venv/bin/python neurons/miner.py "${args[@]}" "$@"
