"""Training throughput: token-budget length batches vs. padding every sequence to a fixed block (as the release does).

    tools/venv/bin/python test/bench/bench_train.py [--tokens egs/mini_synth/asr1/dump/tokens/mfcc_kmeans/train]
        [--seconds 40] [--threads 2] [--precision bf16]

Both sides train the same model (the embedded recipe's default size) with the same loss for the same wall time and
count *target* tokens (real, non-pad tokens) per second. Sequence lengths come from a token dir when given, else
from a synthetic distribution shaped like the embedded corpus (mean ~126 tokens). Prints both rates and the ratio
(target >= 2x).
"""

from __future__ import annotations

import argparse
import random
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from toolkit.losses.sld import SLDLossConfig, sld_loss
from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.vocab import VocabLayout
from toolkit.train.data import collate, make_batches


def lengths_from(tokens: Path | None, count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    if tokens:
        speech = [len(line.split()) - 1 for line in (tokens / "speech").read_text().splitlines()]
        text = [len(line.split()) - 1 for line in (tokens / "text").read_text().splitlines()]
        return [s + t + 3 for s, t in zip(speech, text, strict=True)]
    # Embedded-corpus shape: 2-25 words, speech tokens roughly proportional to duration.
    return [max(12, int(rng.gammavariate(6.0, 21.0))) for _ in range(count)]


def random_sequence(length: int, layout: VocabLayout, rng: random.Random) -> list[int]:
    text = max(2, length // 8)
    speech = length - text - 3
    return (
        [layout.bos_id]
        + [layout.speech_offset + rng.randrange(layout.speech_size) for _ in range(speech)]
        + [layout.speech_end_id]
        + [layout.text_offset + rng.randrange(layout.text_size) for _ in range(text)]
        + [layout.text_end_id]
    )


def run(batches: list[list[int]], sequences, pad_to: int | None, layout, seconds: float, precision: str) -> float:
    torch.manual_seed(0)
    model = build_speech_lm(SpeechLMConfig(max_positions=4096), layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    targets, start, index = 0, time.time(), 0
    while time.time() - start < seconds:
        batch = [sequences[i] for i in batches[index % len(batches)]]
        index += 1
        if pad_to:  # the release pads every sequence to one fixed length
            batch = [s + [layout.pad_id] * (pad_to - len(s)) for s in batch]
        ids, mask = collate(batch, layout.pad_id)
        mask = (ids != layout.pad_id).long()
        with autocast:
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        loss, _ = sld_loss(logits, ids, layout, SLDLossConfig(kind="sld"))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        targets += int(mask.sum()) - len(batch)
    return targets / (time.time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=40.0, help="wall time per side")
    parser.add_argument(
        "--max-tokens", type=int, default=2000, help="padded tokens per batch (both sides; the recipe's 2000)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    layout = VocabLayout(text_size=256, speech_size=1000)
    lengths = lengths_from(args.tokens, 3000, 0)
    rng = random.Random(1)
    sequences = [random_sequence(n, layout, rng) for n in lengths]
    block = max(lengths)  # the release pads to a block that fits every sequence
    per_batch = max(1, args.max_tokens // block)
    fixed = [list(range(i, min(i + per_batch, len(lengths)))) for i in range(0, len(lengths), per_batch)]
    random.Random(2).shuffle(fixed)
    budget = make_batches(lengths, args.max_tokens, seed=0, epoch=0)

    print(
        f"{len(lengths)} sequences, mean length {sum(lengths) / len(lengths):.1f}, block {block}; "
        f"{args.precision}, {args.threads} threads, {args.seconds:.0f} s per side"
    )
    fixed_rate = run(fixed, sequences, block, layout, args.seconds, args.precision)
    print(f"fixed block of {block} tokens, {per_batch} sequences per batch: {fixed_rate:8.0f} target tokens/s")
    budget_rate = run(budget, sequences, None, layout, args.seconds, args.precision)
    print(f"token budget of {args.max_tokens} padded tokens per batch:   {budget_rate:8.0f} target tokens/s")
    print(f"ratio: {budget_rate / fixed_rate:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
