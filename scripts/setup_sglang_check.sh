#!/usr/bin/env bash
# SGLang's Python package without its CUDA dependencies, into .venv: enough to import its
# ServerArgs and check the presets' arguments against it on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.installed-sglang-check
[ -f "$stamp" ] && exit 0
echo "installing sglang 0.5.23 (no CUDA deps) to check SGLang arguments"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps sglang==0.5.23
.venv/bin/python -m pip install --quiet --disable-pip-version-check orjson pybase64 requests starlette msgspec pyzmq IPython aiohttp
touch "$stamp"
