"""Training throughput of the speech-text LM, against the host: token-budget length batches vs. padding every sequence
to a fixed block (as the release does), and the fraction of the host's matmul peak that a training step reaches.

    tools/venv/bin/python test/bench/bench_train.py [--tokens egs/mini_synth/asr1/dump/tokens/mfcc_kmeans/train]
        [--config egs/mini_synth/asr1/conf/train_sld.yaml] [--seconds 40] [--threads 2] [--precision auto]

It prints the host first (CPU model, the flags that matter, measured fp32 and bf16 matmul GFLOP/s at 1024), then
trains the recipe's model (`--config`: model, loss, optimizer, batching) with the same loss on both sides for the same
wall time, and counts *target* tokens (real, non-pad tokens) per second. `--precision auto` (the default) resolves
as training does (toolkit.hardware): bf16 only where it is native and faster. Uncompiled unless `--compile`.

Efficiency: the matmul FLOPs of each step (forward and backward, from the batch's shape; checked against torch's
FlopCounterMode on the first batch) divided by the step time, as a fraction of the host's measured matmul peak in
the run's precision (target >= 50%). Sequence lengths come from a token dir when given, else from a synthetic
distribution shaped like the embedded corpus (mean ~126 tokens).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from toolkit.config import load_config
from toolkit.hardware import autocast, choose_precision, host_peaks, host_summary
from toolkit.losses.sld import sld_loss
from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.vocab import VocabLayout
from toolkit.train.config import TrainConfig
from toolkit.train.data import collate, make_batches

RECIPE_CONFIG = Path(__file__).resolve().parents[2] / "egs/mini_synth/asr1/conf/train_sld.yaml"


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


def step_flops(model: SpeechLMConfig, vocab: int, batch: int, length: int) -> float:
    """Matmul FLOPs of one training step on a [batch, length] batch: the forward's projections, feed-forward, the
    attention's two batched products and the output layer; the backward computes two matmuls per forward matmul
    (gradients of the input and of the weight), so a step is 3x the forward."""
    d, f, layers = model.hidden_size, model.intermediate_size, model.num_layers
    feed_forward = 3 if model.arch == "llama" else 2  # llama: gate, up, down; gpt2: up, down
    per_token = layers * (2 * 4 * d * d + 2 * feed_forward * d * f) + 2 * d * vocab
    attention = layers * 2 * 2 * batch * length * length * d
    return 3.0 * (batch * length * per_token + attention)


def forward_loss(model, ids, mask, layout, cfg: TrainConfig, precision: str) -> torch.Tensor:
    with autocast(precision, "cpu"):
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    return sld_loss(logits, ids, layout, cfg.loss)[0]


def train_step(model, optimizer, ids, mask, layout, cfg: TrainConfig, precision: str, forward=forward_loss) -> None:
    loss = forward(model, ids, mask, layout, cfg, precision)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def run(
    batches, sequences, pad_to: int | None, layout, cfg: TrainConfig, seconds: float, precision: str, compiled: bool
) -> dict:
    """Train for `seconds`; returns target tokens/s and matmul GFLOP/s. `pad_to`: pad every sequence to this length
    (the release's fixed block); else the batch is padded to its longest (rounded as the config says). `compiled`:
    the forward and the loss under torch.compile, as `compile: true` trains (compiled during the warm-up)."""
    torch.manual_seed(0)
    model = build_speech_lm(cfg.model, layout)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def tensors(index: int):
        batch = [sequences[i] for i in batches[index % len(batches)]]
        if pad_to:
            batch = [s + [layout.pad_id] * (pad_to - len(s)) for s in batch]
        ids, mask = collate(batch, layout.pad_id, 1 if pad_to else cfg.batching.pad_to_multiple)
        return ids, (ids != layout.pad_id).long() if pad_to else mask

    # The analytic count against torch's own, on the first batch (a forward and backward, not timed).
    ids, mask = tensors(0)
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(model, optimizer, ids, mask, layout, cfg, precision)
    analytic = step_flops(cfg.model, layout.size, *ids.shape)
    forward = torch.compile(forward_loss, dynamic=True) if compiled else forward_loss
    for index in range(4):  # warm-up: kernels for the first shapes (and compiling, static then dynamic shapes)
        train_step(model, optimizer, *tensors(index), layout, cfg, precision, forward)
    targets, flops, steps, index, start = 0, 0.0, 0, 0, time.time()
    while time.time() - start < seconds:
        ids, mask = tensors(index)
        index += 1
        train_step(model, optimizer, ids, mask, layout, cfg, precision, forward)
        targets += int(mask.sum()) - ids.shape[0]
        flops += step_flops(cfg.model, layout.size, *ids.shape)
        steps += 1
    elapsed = time.time() - start
    return {
        "tokens_per_s": targets / elapsed,
        "gflops": flops / elapsed / 1e9,
        "step_s": elapsed / steps,
        "counted_vs_analytic": counter.get_total_flops() / analytic,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=Path, default=None)
    parser.add_argument("--config", type=Path, default=RECIPE_CONFIG, help="training YAML (model, loss, batching)")
    parser.add_argument("--seconds", type=float, default=40.0, help="wall time per side")
    parser.add_argument("--max-tokens", type=int, default=None, help="padded tokens per batch (default: the config's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--budget-only", action="store_true", help="skip the fixed-block side")
    parser.add_argument("--compile", action="store_true", help="train under torch.compile, as `compile: true` does")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    peaks = host_peaks()
    print(host_summary(peaks=peaks))
    choice = choose_precision(args.precision, "cpu")
    print(choice.describe())
    precision = choice.precision
    cfg = load_config(TrainConfig, args.config, [f"precision={precision}"])
    max_tokens = args.max_tokens or cfg.batching.max_tokens
    layout = VocabLayout(text_size=256, speech_size=1000)
    lengths = [n for n in lengths_from(args.tokens, 3000, 0) if n <= cfg.batching.max_len]
    rng = random.Random(1)
    sequences = [random_sequence(n, layout, rng) for n in lengths]
    block = max(lengths)  # the release pads to a block that fits every sequence
    cfg.model.max_positions = max(cfg.model.max_positions, block)
    budget = make_batches(lengths, max_tokens, seed=0, epoch=0, pad_to_multiple=cfg.batching.pad_to_multiple)
    print(
        f"{len(lengths)} sequences, mean length {sum(lengths) / len(lengths):.1f}, block {block}; model "
        f"{cfg.model.num_layers}x{cfg.model.hidden_size} ({args.config.name}); {precision}, {args.threads} threads, "
        f"{args.seconds:.0f} s per side{', compiled' if args.compile else ''}"
    )
    peak = peaks[precision]

    def report(name: str, result: dict) -> None:
        print(
            f"{name}: {result['tokens_per_s']:8.0f} target tokens/s, {result['step_s'] * 1000:.0f} ms/step, "
            f"{result['gflops']:.1f} GFLOP/s = {100 * result['gflops'] / peak:.0f}% of the host's {precision} matmul "
            f"peak ({peak:.1f}; FlopCounterMode/analytic FLOPs {result['counted_vs_analytic']:.3f})"
        )

    budget_result = run(budget, sequences, None, layout, cfg, args.seconds, precision, args.compile)
    report(f"token budget of {max_tokens} padded tokens per batch", budget_result)
    if args.budget_only:
        return
    per_batch = max(1, max_tokens // block)
    fixed = [list(range(i, min(i + per_batch, len(lengths)))) for i in range(0, len(lengths), per_batch)]
    random.Random(2).shuffle(fixed)
    fixed_result = run(fixed, sequences, block, layout, cfg, args.seconds, precision, args.compile)
    report(f"fixed block of {block} tokens, {per_batch} sequences per batch", fixed_result)
    print(f"ratio: {budget_result['tokens_per_s'] / fixed_result['tokens_per_s']:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
