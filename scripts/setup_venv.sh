#!/usr/bin/env bash
# Create or refresh the project's venv (.venv) with Python 3.11; a no-op when nothing changed.
#   scripts/setup_venv.sh          what the miner needs
#   scripts/setup_venv.sh dev      plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRA=${1:-}

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "natix-miner needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

fingerprint=$(sha256sum pyproject.toml | cut -c1-16)
stamp="$VENV/.installed-$fingerprint-${EXTRA:-base}"
[ -f "$stamp" ] && exit 0

if [ ! -x "$VENV/bin/python" ]; then
  python=$(find_python)
  echo "creating $VENV with $python"
  "$python" -m venv "$VENV"
fi
echo "installing natix-miner${EXTRA:+[$EXTRA]} into $VENV (torch is large: the first time takes a few minutes)"
# One line per package as pip reaches it: the first install takes minutes, and a silent screen looks hung.
"$VENV/bin/python" -m pip install --progress-bar off --disable-pip-version-check -e ".${EXTRA:+[$EXTRA]}" 2>&1 |
  grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed|ERROR)' | cut -c1-160
rm -f "$VENV"/.installed-*
touch "$stamp" "$VENV/.installed-$fingerprint-base"
