"""Pack a trained ASR run into one self-contained model folder (stage 10; toolkit/inference/pack.py has the layout).

    python -m toolkit.bin.pack_model --exp exp/train_sld_mfcc_kmeans --discretizer exp/discretizer/mfcc_kmeans \\
        --decode-config conf/decode.yaml --out exp/train_sld_mfcc_kmeans/model [--command "./run.sh ..."]

The model card (README.md in the folder) lists the run's scores from <exp>/decode*/<set>/score.json, the training
data, the command that made it, and how to use the folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m toolkit.bin.pack_model", description=__doc__.split("\n\n")[0])
    p.add_argument("--exp", required=True, help="the training run (exp/<tag>) with best/ and config.yaml")
    p.add_argument("--discretizer", required=True, help="the discretizer folder the run's units came from")
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
    args = build_parser().parse_args(argv)
    from toolkit.fileio import describe_error
    from toolkit.inference.pack import pack_speech2text
    from toolkit.train.run_dir import DATA_NAME

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
