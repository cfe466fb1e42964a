#!/usr/bin/env bash
# A second venv with bittensor 9.12.2, the version validators pin, for the wire tests' dendrite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CLIENT_VENV:-.venv-bt912}
stamp="$VENV/.installed-bt912"
[ -f "$stamp" ] && exit 0
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
[ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
echo "installing bittensor 9.12.2 into $VENV (the validators' dendrite)"
# 9.12.2 only imports with this async-substrate-interface (see shared FACTS.md).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check bittensor==9.12.2 async-substrate-interface==1.5.12
touch "$stamp"
