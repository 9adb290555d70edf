# Sourced by every recipe script, from the recipe folder (egs/<corpus>/<task>): finds the toolkit's Python
# environment so nobody has to activate it by hand. Order: an explicitly chosen interpreter ($TOOLKIT_PYTHON),
# tools/venv made by tools/install.sh, or else the active environment if it can import the toolkit.
TOOLKIT_ROOT=${TOOLKIT_ROOT:-$(cd ../../.. && pwd)}
export TOOLKIT_ROOT
if [ -n "${TOOLKIT_PYTHON:-}" ]; then
    PATH="$(dirname "$TOOLKIT_PYTHON"):$PATH"
elif [ -x "$TOOLKIT_ROOT/tools/venv/bin/python" ]; then
    export VIRTUAL_ENV="$TOOLKIT_ROOT/tools/venv"
    PATH="$VIRTUAL_ENV/bin:$PATH"
fi
export PATH
if ! python -c "import toolkit" 2>/dev/null; then
    echo "error: the toolkit is not installed for $(command -v python || echo python)." >&2
    echo "       run: $TOOLKIT_ROOT/tools/install.sh" >&2
    exit 1
fi
export PYTHONUNBUFFERED=1
export PYTHONIOENCODING=utf-8
