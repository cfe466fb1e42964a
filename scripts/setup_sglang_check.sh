#!/usr/bin/env bash
# SGLang's Python package without its CUDA dependencies, into .venv: enough to import its
# ServerArgs and check the presets' arguments against it on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
stamp="$VENV/.installed-sglang-check"
[ -f "$stamp" ] && exit 0
echo "installing sglang 0.5.23 (no CUDA deps) to check SGLang arguments"
# What ServerArgs imports first, then sglang itself without its dependencies, last: pip checks the
# dependencies of what it installs only without --no-deps, and sglang's pinned GPU packages are
# missing here on purpose (a check after sglang would print ~50 ERROR lines on a good set-up).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check orjson pybase64 requests starlette msgspec pyzmq IPython aiohttp
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps sglang==0.5.23
touch "$stamp"
