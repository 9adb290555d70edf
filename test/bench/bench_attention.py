"""Training step time of the speech-text LM by attention implementation, attention dropout and torch.compile, on CPU.

    tools/venv/bin/python test/bench/bench_attention.py [--tokens egs/mini_synth/asr1/dump/tokens/mfcc_kmeans/train]
        [--rounds 4] [--steps 10] [--threads 2] [--no-compile]

Why it exists: on CPU, attention dropout makes `sdpa` fall back to its unfused path and draws a Bernoulli mask per
attention weight (about a seventh of the step in a profile), and without dropout the fused CPU kernel's backward
is slower than the plain matmul path (`eager`) at these sequence lengths (~130 tokens, head size 64). `eager` with
dropout applies the same dropout to the same attention weights as `sdpa` does (other random masks), so it is the same
model at another speed. `eager_fast_dropout` (toolkit/models/attention.py) is `eager` with a cheaper dropout mask,
and the `compiled` settings run the model under torch.compile (`compile: true` compiles the loss with it; the first
steps compile; they are part of the warm-up). The settings train the same model (the embedded recipe's size, autocast in
the precision `--precision auto` resolves to, as training does; the `sld` loss) on the same token-budget batches. The machine's speed drifts over minutes, so the settings
take turns: `--rounds` rounds of `--steps` steps each, every setting in every round, and the ratios are of the summed
times.
Prints ms per step and the ratio of each setting to the first one (sdpa with dropout 0.1, the earlier default).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

# Run as a script, this folder is on sys.path: the sequence helpers are bench_train's.
from bench_train import lengths_from, random_sequence  # noqa: E402

from toolkit.hardware import autocast, choose_precision, host_summary
from toolkit.losses.sld import SLDLossConfig, sld_loss
from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.vocab import VocabLayout
from toolkit.train.data import collate, make_batches

# (attention, dropout, compiled)
SETTINGS = (
    ("sdpa", 0.1, False),
    ("eager", 0.1, False),
    ("eager_fast_dropout", 0.1, False),
    ("eager", 0.1, True),
    ("eager_fast_dropout", 0.1, True),
    ("sdpa", 0.0, False),
    ("eager", 0.0, False),
    ("eager", 0.0, True),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", default=None, help="token dir whose lengths to use (default: synthetic)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="steps per setting per round")
    parser.add_argument("--max-tokens", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="leave out the compiled settings")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="as training resolves it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(host_summary())
    choice = choose_precision(args.precision, "cpu")
    print(choice.describe())
    precision = choice.precision
    settings = [s for s in SETTINGS if not (args.no_compile and s[2])]
    # One compiled copy of the same model classes per compiled setting: room for all of them in dynamo's cache.
    torch._dynamo.config.cache_size_limit = 64

    layout = VocabLayout(text_size=256, speech_size=1000)
    lengths = lengths_from(Path(args.tokens) if args.tokens else None, 3000, 0)
    rng = random.Random(1)
    sequences = [random_sequence(n, layout, rng) for n in lengths]
    batches = make_batches(lengths, args.max_tokens, seed=0, epoch=0)
    loss_cfg = SLDLossConfig(kind="sld")

    models = {}
    for attn, dropout, compiled in settings:
        torch.manual_seed(0)
        model = build_speech_lm(SpeechLMConfig(dropout=dropout, attn_implementation=attn), layout).train()
        forward = torch.compile(model, dynamic=True) if compiled else model
        models[(attn, dropout, compiled)] = (forward, torch.optim.AdamW(model.parameters(), lr=1e-4))

    def step(setting, batch_ids: list[int]) -> None:
        forward, optimizer = models[setting]
        ids, mask = collate([sequences[i] for i in batch_ids], layout.pad_id)
        with autocast(precision, "cpu"):
            logits = forward(input_ids=ids, attention_mask=mask, use_cache=False).logits
        loss, _ = sld_loss(logits, ids, layout, loss_cfg)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for setting in settings:  # warm-up: first calls allocate, pick kernels and compile
        for b in batches[:6]:
            step(setting, b)
    seconds = dict.fromkeys(settings, 0.0)
    position = 6
    for _ in range(args.rounds):
        chunk = [batches[(position + k) % len(batches)] for k in range(args.steps)]
        position += args.steps
        for setting in settings:
            start = time.perf_counter()
            for b in chunk:
                step(setting, b)
            seconds[setting] += time.perf_counter() - start

    steps = args.rounds * args.steps
    base = seconds[settings[0]]
    print(f"{steps} steps per setting ({args.rounds} interleaved rounds), {args.threads} threads, {precision}")
    for attn, dropout, compiled in settings:
        s = seconds[(attn, dropout, compiled)]
        name = f"attn {attn:18s} dropout {dropout:.1f}{' compiled' if compiled else '         '}"
        print(f"{name}: {1000 * s / steps:7.1f} ms/step  speed-up {base / s:.2f}x")


if __name__ == "__main__":
    main()
