"""Pack a trained model into one self-contained folder (toolkit/inference/pack.py has the layouts).

    # ASR (stage 10 of asr.sh): the speech-text LM with its tokenizers and discretizer
    python -m toolkit.bin.pack_model --exp exp/train_sld_mfcc_kmeans --discretizer exp/discretizer/mfcc_kmeans \\
        --decode-config conf/decode.yaml --out exp/train_sld_mfcc_kmeans/model [--command "./run.sh ..."]
    # SLU (stage 8 of slu.sh): task heads with the upstream they were trained on
    python -m toolkit.bin.pack_model --heads exp/ic_pad_slocal exp/sf_pad_slocal --out exp/slu_pad_slocal/model

The model card (README.md in the folder) lists the run's scores from <exp>/decode*/<set>/score.json, the training
data, the command that made it, and how to use the folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SLU_METRICS = ("accuracy", "slot_type_f1", "slot_value_cer")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m toolkit.bin.pack_model", description=__doc__.split("\n\n")[0])
    p.add_argument("--exp", help="ASR: the training run (exp/<tag>) with best/ and config.yaml")
    p.add_argument("--discretizer", help="ASR: the discretizer folder the run's units came from")
    p.add_argument("--heads", nargs="+", help="SLU: downstream runs (exp/<task>_<tag>) or head.pt files, one per task")
    p.add_argument("--decode-config", help="the decoding YAML to ship as the model's default")
    p.add_argument("--out", required=True, help="the packed folder to write (replaced when complete)")
    p.add_argument("--command", help="the command that trained the model, for the model card")
    return p


def run_scores(exp: Path) -> dict[str, str]:
    """`decode-dir/set: WER x, CER y (n utterances)` for every score.json of the run."""
    scores = {}
    for path in sorted(exp.glob("decode*/*/score.json")):
        score = json.loads(path.read_text(encoding="utf-8"))
        parts = [f"{k.upper()} {score[k]:.2f}%" for k in ("wer", "cer") if isinstance(score.get(k), int | float)]
        scores[f"{path.parent.parent.name}/{path.parent.name}"] = ", ".join(parts) + f" ({score.get('n_utt')} utts)"
    return scores


def slu_scores(heads: list[str]) -> dict[str, str]:
    """`<task run>/<set>: metric value, ...` for every score.json under the heads' eval folders."""
    scores = {}
    for head in heads:
        folder = Path(head) if Path(head).is_dir() else Path(head).parent
        for path in sorted(folder.glob("eval/*/score.json")):
            score = json.loads(path.read_text(encoding="utf-8"))
            shown_metrics = [
                f"{k} {v:.2f}" for k, v in score.items() if k in SLU_METRICS and isinstance(v, int | float)
            ]
            scores[f"{folder.name}/{path.parent.name}"] = ", ".join(shown_metrics) + f" ({score.get('n_utt')} utts)"
    return scores


def shown(path: str) -> str:
    """A path for the card: relative to the recipe when inside it, else its last parts (no user's absolute paths)."""
    p = Path(path)
    if not p.is_absolute():
        return path
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(Path("...", *p.parts[-3:]))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.heads) == bool(args.exp or args.discretizer):
        parser.error("give --exp and --discretizer (ASR) or --heads (SLU)")
    if args.exp and not args.discretizer:
        parser.error("--exp needs --discretizer")
    from toolkit.fileio import describe_error
    from toolkit.inference.pack import pack_speech2text, pack_understand
    from toolkit.train.run_dir import DATA_NAME

    if args.heads:
        try:
            card = {"command": f"`{args.command}`" if args.command else None, "scores": slu_scores(args.heads)}
            out = pack_understand(args.heads, args.out, card)
        except (ValueError, OSError) as e:
            print(f"error: {describe_error(e)}", file=sys.stderr)
            return 1
        print(f"packed {' '.join(args.heads)} -> {out}")
        return 0
    exp = Path(args.exp)
    try:
        data = json.loads((exp / DATA_NAME).read_text()) if (exp / DATA_NAME).is_file() else {}
        card = {
            "command": f"`{args.command}`" if args.command else None,
            "training data": {role: shown(path) for role, path in data.get("paths", {}).items()},
            "scores": run_scores(exp),
        }
        out = pack_speech2text(exp, args.discretizer, args.decode_config, args.out, card)
    except (ValueError, OSError) as e:
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    print(f"packed {exp} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
