#!/usr/bin/env bash
# Create or refresh the project's venv (.venv) with Python 3.11; a no-op when nothing changed.
#   scripts/setup_venv.sh                  the base install: what serving a CPU preset needs (no torch)
#   scripts/setup_venv.sh vlm              plus install extras, comma-separated: train, vlm, gpu, report
#   scripts/setup_venv.sh --config NAME    the extras a preset (or a YAML file) declares in `requires:`
#   scripts/setup_venv.sh --extras-of NAME those extras, printed (nothing installed)
#   scripts/setup_venv.sh dev              everything the tests need (run_tests.sh)
# Extras installed earlier stay (pip adds, never removes): switching presets only ever adds packages.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

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

# The `requires:` of a preset name or a YAML path, as "a,b": `requires: [a, b]` or a block list.
# Read without Python packages: this runs before the venv has any. An unknown preset gives nothing
# (the miner names it itself).
requires_of() {
  local file=$1
  case "$file" in *.yaml|*.yml) ;; *) file=cascade/presets/$file.yaml ;; esac
  [ -f "$file" ] || return 0
  awk '
    /^requires:/ {
      if (match($0, /\[[^]]*\]/)) { list = substr($0, RSTART + 1, RLENGTH - 2); gsub(/[ "'"'"']/, "", list); print list; exit }
      block = 1; next
    }
    block && /^[[:space:]]*-/ { item = $0; sub(/^[[:space:]]*-[[:space:]]*/, "", item); sub(/[[:space:]]*(#.*)?$/, "", item); gsub(/["'"'"']/, "", item); list = list (list ? "," : "") item; next }
    block { exit }
    END { if (block && list) print list }
  ' "$file"
}

if [ "${1:-}" = "--extras-of" ]; then  # what --config would install, printed
  requires_of "${2:?--extras-of needs a preset name or a YAML path}"
  exit 0
elif [ "${1:-}" = "--config" ]; then
  EXTRAS=$(requires_of "${2:?--config needs a preset name or a YAML path}")
else
  EXTRAS=${1:-}
fi
EXTRAS=$(echo "$EXTRAS" | tr -d ' ')

# One stamp per extra installed since pyproject.toml last changed: a changed pyproject.toml, or an
# extra not installed yet (another preset), installs again.
fingerprint=$(sha256sum pyproject.toml | cut -c1-16)
wanted=(base ${EXTRAS//,/ })
missing=0
for extra in "${wanted[@]}"; do
  [ -f "$VENV/.installed-$fingerprint-$extra" ] || missing=1
done
[ "$missing" = 0 ] && exit 0

if [ ! -x "$VENV/bin/python" ]; then
  python=$(find_python)
  echo "creating $VENV with $python"
  "$python" -m venv "$VENV"
fi
case ",$EXTRAS," in
  *,train,*|*,vlm,*|*,gpu,*|*,dev,*) size="torch is large: the first time takes a few minutes" ;;
  *) size="the base, without torch: about a minute the first time" ;;
esac
echo "installing natix-miner${EXTRAS:+[$EXTRAS]} into $VENV ($size)"
# One line per package as pip reaches it: the first install takes minutes, and a silent screen looks hung.
"$VENV/bin/python" -m pip install --progress-bar off --disable-pip-version-check -e ".${EXTRAS:+[$EXTRAS]}" 2>&1 |
  grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed|ERROR)' | cut -c1-160
find "$VENV" -maxdepth 1 -name '.installed-*' ! -name ".installed-$fingerprint-*" -delete
# dev names the extras it includes (natix-miner[train,vlm,report] in pyproject.toml): they are installed too.
if [[ ",$EXTRAS," == *,dev,* ]]; then
  wanted+=($(sed -n 's/.*"natix-miner\[\([a-z,]*\)\]".*/\1/p' pyproject.toml | tr ',' ' '))
fi
for extra in "${wanted[@]}"; do
  touch "$VENV/.installed-$fingerprint-$extra"
done
