#!/usr/bin/env bash
# Install what the tests need (first run only) and run them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_venv.sh dev
scripts/setup_sglang_check.sh
scripts/setup_client_venv.sh
# NATIX_FULL_TEST_ENV: tests that need these extra tools fail, rather than skip, when they are missing.
export NATIX_FULL_TEST_ENV=1 NATIX_BT912_PYTHON="$PWD/.venv-bt912/bin/python"
exec .venv/bin/python -m pytest "$@"
