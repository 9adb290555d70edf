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


def test_help_shows_the_values_after_every_option():
    # A script's `usage` runs after all options are parsed, so the values are the recipe's, whatever their order.
    script = f"""
    stage=1; min_dur=0.1
    usage() {{ echo "--stage ($stage) --min_dur ($min_dur)"; }}
    . {PARSE}
    echo "not reached"
    """
    proc = subprocess.run(["bash", "-c", script, "demo", "--help", "--min_dur", "0.3"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "--stage (1) --min_dur (0.3)"


def test_recipe_help_lists_run_sh_values_and_the_stages():
    for recipe, value, last in (
        ("asr1", "--min_dur (0.3)", "10  pack the model"),
        ("slu1", "--tasks (ic sf)", "8  pack the upstream"),
    ):
        proc = subprocess.run(
            ["./run.sh", "--help"], cwd=REPO / "egs/mini_synth" / recipe, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert value in proc.stdout and "Stages:" in proc.stdout and last in proc.stdout
