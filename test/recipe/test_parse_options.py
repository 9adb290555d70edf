import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARSE = REPO / "egs/TEMPLATE/asr1/utils/parse_options.sh"


def run(args: str):
    script = f"""
    stage=1; stop_stage=9; test_sets="a"; help_message="usage: demo"
    . {PARSE}
    echo "stage=$stage stop_stage=$stop_stage test_sets=$test_sets rest=$*"
    """
    return subprocess.run(["bash", "-c", script, "demo", *args.split("|")], capture_output=True, text=True)


def test_options_set_variables_in_both_spellings():
    proc = run("--stage|3|--stop-stage=5|--test_sets|x y|pos")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "stage=3 stop_stage=5 test_sets=x y rest=pos"


def test_unknown_option_is_an_error():
    proc = run("--stgae|3")
    assert proc.returncode == 1
    assert "unknown option '--stgae'" in proc.stderr


def test_option_without_value_and_help():
    proc = run("--stage")
    assert proc.returncode == 1 and "needs a value" in proc.stderr
    proc = run("--help")
    assert proc.returncode == 0 and proc.stdout.strip() == "usage: demo"
