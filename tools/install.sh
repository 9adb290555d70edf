#!/usr/bin/env bash
# Set up, or bring up to date, the toolkit's Python environment. Safe to run again: it only installs what changed.
#
#   tools/install.sh                    creates tools/venv (recipes and tests find it by themselves)
#   tools/install.sh --use-active-venv  installs into the virtual environment that is active now ($VIRTUAL_ENV)
#
# Needs only Python >= 3.10 with venv and pip, and the package registry: no apt, no model downloads.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
use_active=false
for arg in "$@"; do
    case "$arg" in
        --use-active-venv) use_active=true ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "error: unknown option '$arg' (see $0 --help)" >&2; exit 1 ;;
    esac
done

start=$(date +%s)
if $use_active; then
    [ -n "${VIRTUAL_ENV:-}" ] || { echo "error: --use-active-venv but no virtual environment is active" >&2; exit 1; }
    venv=$VIRTUAL_ENV
else
    venv=$root/tools/venv
    if [ ! -x "$venv/bin/python" ]; then
        command -v "$python" > /dev/null || { echo "error: $python not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
            || { echo "error: $("$python" --version) is too old; the toolkit needs Python >= 3.10" >&2; exit 1; }
        echo "creating $venv with $("$python" --version)"
        "$python" -m venv "$venv"
    fi
fi

# The stamp records what was installed; when setup.py and the constraints are unchanged there is nothing to do.
stamp="$venv/.toolkit-install"
want=$(cat "$root/setup.py" "$root/tools/constraints.txt" | sha256sum | cut -d' ' -f1)
smoke='import toolkit, torch, torchaudio, transformers, soundfile, espeakng_loader, matplotlib'
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c "$smoke" 2> /dev/null; then
    echo "toolkit environment $venv is up to date"
    exit 0
fi

echo "installing the toolkit and its pinned dependencies into $venv (first time: a few minutes, ~6 GB)"
"$venv/bin/python" -m pip install --disable-pip-version-check -q \
    -c "$root/tools/constraints.txt" -e "$root[test]"
"$venv/bin/python" -c "$smoke" || { echo "error: the installed environment does not import; see above" >&2; exit 1; }
echo "$want" > "$stamp"
echo "installed in $(( $(date +%s) - start )) s; $venv uses $(du -sh "$venv" | cut -f1)"
