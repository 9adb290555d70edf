#!/usr/bin/env bash
# Parse `--name value` and `--name=value` options into shell variables that the calling script has already defined
# (Kaldi's convention: `--stop-stage 3` and `--stop_stage 3` both set stop_stage). Source it after the defaults:
#     . utils/parse_options.sh
# An option with no matching variable is an error, so a typo never runs a recipe with a silently ignored setting.
# `--help` prints the help once every option is parsed: the calling script's `usage` function when it has one (so
# the values shown are the recipe's, after run.sh's settings), else $help_message. Positional arguments are left
# in "$@".

__po_args=()
__po_help=""
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            __po_help=1; shift
            continue
            ;;
        --)
            shift
            __po_args+=("$@")
            break
            ;;
        --*=*)
            __po_name="${1%%=*}"; __po_value="${1#*=}"; shift
            ;;
        --*)
            if [ $# -lt 2 ]; then
                echo "$0: option '$1' needs a value" >&2
                exit 1
            fi
            __po_name="$1"; __po_value="$2"; shift 2
            ;;
        *)
            __po_args+=("$1"); shift
            continue
            ;;
    esac
    __po_var="${__po_name#--}"
    __po_var="${__po_var//-/_}"
    if ! [[ "$__po_var" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!__po_var+set}" ]; then
        echo "$0: unknown option '$__po_name' (see $0 --help)" >&2
        exit 1
    fi
    printf -v "$__po_var" '%s' "$__po_value"
done
if [ -n "$__po_help" ]; then
    if declare -F usage > /dev/null; then usage; else echo "${help_message:-No help available for $0.}"; fi
    exit 0
fi
set -- "${__po_args[@]+"${__po_args[@]}"}"
unset __po_args __po_name __po_value __po_var __po_help
