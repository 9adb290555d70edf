"""Decode a set with a trained speech-text LM (stage 8): hypotheses as a Kaldi `text` file for the scoring stage.

    python -m toolkit.bin.decode --exp exp/sld --tokens dump/tokens/mfcc_kmeans/test \\
        --config conf/decode.yaml --out exp/sld/decode/test [--shard 1 --num-shards 4] [--device cpu]

Reads the best model (`<exp>/best`), the training config (for the sequence format) and the tokenizers the run
was trained with. With --num-shards N, shard K decodes every N-th utterance and writes `<out>/text.K`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from toolkit.device import add_device_option


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", required=True, help="the training run directory (exp/<tag>)")
    parser.add_argument("--tokens", required=True, help="token dir of the set to decode (speech, text)")
    parser.add_argument("--config", default=None, help="decoding YAML (conf/decode.yaml)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--shard", type=int, default=1)
    parser.add_argument("--num-shards", type=int, default=1)
    add_device_option(parser)
    args = parser.parse_args(argv)
    # Imported only now: --help must answer at once, not after torch (and transformers) load.
    import torch

    from toolkit.config import ConfigError, load_config, load_yaml
    from toolkit.decode.greedy import model_max_positions
    from toolkit.decode.search import DecodeConfig, decode_prompts, too_long
    from toolkit.device import device_option
    from toolkit.fileio import TableError, write_table
    from toolkit.hardware import choose_precision
    from toolkit.models.speech_lm import load_speech_lm
    from toolkit.tokenizers.text import TextTokenizer
    from toolkit.tokenizers.vocab import VocabLayout
    from toolkit.train.data import example_prompt, load_examples
    from toolkit.train.run_dir import run_tokenizers

    if not 1 <= args.shard <= args.num_shards:
        parser.error(f"--shard must be in 1..{args.num_shards}, got {args.shard}")

    device = torch.device(device_option(parser, args.device))
    exp = Path(args.exp)
    try:
        cfg = load_config(DecodeConfig, args.config, args.set)
        if not (exp / "best").is_dir():
            raise FileNotFoundError(f"{exp}/best does not exist: has training (stage 7) finished an epoch?")
        use_bos = load_yaml(exp / "config.yaml").get("use_bos", True)
        layout = VocabLayout.load(exp / "best" / "vocab.json")
        tokenizer = TextTokenizer.load(run_tokenizers(exp) / "text")
        examples = load_examples(args.tokens, layout)
        choice = choose_precision(cfg.precision, device, cpu_matmul_bound=False)
        model = load_speech_lm(exp / "best").to(device).eval()
    except (ConfigError, TableError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    examples = examples[args.shard - 1 :: args.num_shards]
    prompts = [example_prompt(e, layout, use_bos) for e in examples]
    # A prompt that fills the model's positions (GPT-2: 1024) leaves no room for a transcript. Such an utterance gets
    # an empty hypothesis (scored as deletions) instead of stopping the whole set; the warning names them.
    skipped = too_long(model, prompts)
    if skipped:
        names = ", ".join(examples[i].uttid for i in sorted(skipped)[:5])
        print(
            f"warning: {len(skipped)} utterance(s) have prompts of {model_max_positions(model)} tokens or more, the "
            f"model's limit; their hypotheses are empty (scored as deletions): {names}{' ...' if len(skipped) > 5 else ''}",
            file=sys.stderr,
        )
    print(choice.describe(), file=sys.stderr)
    start = time.time()
    hyps = decode_prompts(model, prompts, layout, cfg, choice.precision, device)
    elapsed = time.time() - start
    text = {e.uttid: tokenizer.decode([t - layout.text_offset for t in h]) for e, h in zip(examples, hyps, strict=True)}
    out = Path(args.out)
    name = "text" if args.num_shards == 1 else f"text.{args.shard}"
    write_table(out / name, text)
    print(f"decoded {len(examples)} utterances in {elapsed:.1f} s ({len(examples) / max(elapsed, 1e-9):.1f} utt/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
