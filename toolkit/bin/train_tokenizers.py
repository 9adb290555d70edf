"""Train the text and speech-unit tokenizers and fix the shared vocabulary layout.

    python -m toolkit.bin.train_tokenizers --config conf/tokenizer.yaml --text dump/raw/train/text \\
        --units dump/units/mfcc_kmeans/train/units --out exp/tokenizers/mfcc_kmeans [--set units.vocab_size=500]

Writes <out>/text/ (TextTokenizer), <out>/units/ (UnitTokenizer), <out>/vocab.json (VocabLayout) and
<out>/config.yaml (the resolved config). The config has two sections, `text` (TextTokenizerConfig) and `units`
(UnitTokenizerConfig); an unknown key is an error. Everything is built in <out>.tmp and moved into place only when
complete, so an error (`error: ...`, exit status 1) leaves no partial output.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.config import load_config, save_config
from toolkit.fileio import describe_error, iter_table
from toolkit.tokenizers.sequences import CONFIG_FILE, TEXT_DIR, UNITS_DIR, VOCAB_FILE
from toolkit.tokenizers.text import TextTokenizerConfig, train_text_tokenizer
from toolkit.tokenizers.units import UnitTokenizerConfig, read_units, train_unit_tokenizer
from toolkit.tokenizers.vocab import VocabLayout


@dataclass
class TokenizersConfig:
    text: TextTokenizerConfig = field(default_factory=TextTokenizerConfig)
    units: UnitTokenizerConfig = field(default_factory=UnitTokenizerConfig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m toolkit.bin.train_tokenizers", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="YAML with `text:` and `units:` sections (default: all defaults)")
    p.add_argument("--text", required=True, help="Kaldi text file of the training transcripts")
    p.add_argument("--units", required=True, help="units file of the training set (`uttid u1 u2 ...`)")
    p.add_argument("--out", required=True, help="the tokenizer directory to write")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. units.dedup=true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        config = load_config(TokenizersConfig, args.config, args.set)
        _check_replaceable(out)
        texts = [value for _, _, value in iter_table(args.text, allow_empty_value=True)]
        unit_seqs = [units for _, _, units in read_units(args.units, config.units.num_units)]
        shutil.rmtree(tmp, ignore_errors=True)
        text_tok = train_text_tokenizer(texts, tmp / TEXT_DIR, config.text)
        unit_tok = train_unit_tokenizer(unit_seqs, tmp / UNITS_DIR, config.units)
        layout = VocabLayout(text_size=text_tok.size, speech_size=unit_tok.speech_size)
        layout.save(tmp / VOCAB_FILE)
        save_config(TokenizersConfig(text=text_tok.config, units=unit_tok.config), tmp / CONFIG_FILE)
    except (ValueError, OSError) as e:  # ConfigError and TableError are ValueErrors
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    _move_into_place(tmp, out)
    units = unit_tok.config
    speech = (
        f"{units.num_units} units" + (", dedup" if units.dedup else "") + (" -> subwords" if units.subwords else "")
    )
    print(
        f"{out}: text {text_tok.size} tokens ({config.text.kind}), speech K={unit_tok.speech_size} ({speech}), "
        f"vocabulary {layout.size}"
    )
    return 0


def _check_replaceable(out: Path) -> None:
    # A rerun replaces a previous tokenizer directory; anything else at that path is refused rather than deleted.
    if out.exists() and not (out / VOCAB_FILE).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: exists and is not a tokenizer directory; refusing to replace it")


def _move_into_place(tmp: Path, out: Path) -> None:
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
