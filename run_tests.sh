#!/usr/bin/env bash
# Install what the tests need (first run only) and run them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_venv.sh dev
scripts/setup_client_venv.sh
export NATIX_REQUIRE_BT912=1 NATIX_BT912_PYTHON="$PWD/.venv-bt912/bin/python"
exec .venv/bin/python -m pytest "$@"
