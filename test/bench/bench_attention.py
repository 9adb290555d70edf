"""Training step time of the speech-text LM by attention implementation and attention dropout, on CPU.

    tools/venv/bin/python test/bench/bench_attention.py [--tokens egs/mini_synth/asr1/dump/tokens/mfcc_kmeans/train]
        [--rounds 4] [--steps 10] [--threads 2]

Why it exists: on CPU, attention dropout makes `sdpa` fall back to its unfused path and draws a Bernoulli mask per
attention weight (about a seventh of the step in a profile), and without dropout the fused CPU kernel's backward
is slower than the plain matmul path (`eager`) at these sequence lengths (~130 tokens, head size 64). `eager` with
dropout applies the same dropout to the same attention weights as `sdpa` does (other random masks), so it is the same
model at another speed. The four settings train the same model (the embedded recipe's size, bf16 autocast, the
`sld` loss) on the same token-budget batches. The machine's speed drifts over minutes, so the settings take turns:
`--rounds` rounds of `--steps` steps each, every setting in every round, and the ratios are of the summed times.
Prints ms per step and the ratio of each setting to the first one (sdpa with dropout 0.1).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

# Run as a script, this folder is on sys.path: the sequence helpers are bench_train's.
from bench_train import lengths_from, random_sequence  # noqa: E402

from toolkit.losses.sld import SLDLossConfig, sld_loss
from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.vocab import VocabLayout
from toolkit.train.data import collate, make_batches

SETTINGS = (("sdpa", 0.1), ("eager", 0.1), ("sdpa", 0.0), ("eager", 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", default=None, help="token dir whose lengths to use (default: synthetic)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="steps per setting per round")
    parser.add_argument("--max-tokens", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    layout = VocabLayout(text_size=256, speech_size=1000)
    lengths = lengths_from(Path(args.tokens) if args.tokens else None, 3000, 0)
    rng = random.Random(1)
    sequences = [random_sequence(n, layout, rng) for n in lengths]
    batches = make_batches(lengths, args.max_tokens, seed=0, epoch=0)
    loss_cfg = SLDLossConfig(kind="sld")

    models = {}
    for attn, dropout in SETTINGS:
        torch.manual_seed(0)
        model = build_speech_lm(SpeechLMConfig(dropout=dropout, attn_implementation=attn), layout)
        models[(attn, dropout)] = (model.train(), torch.optim.AdamW(model.parameters(), lr=1e-4))

    def step(setting, batch_ids: list[int]) -> None:
        model, optimizer = models[setting]
        ids, mask = collate([sequences[i] for i in batch_ids], layout.pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=ids, attention_mask=mask).logits
        loss, _ = sld_loss(logits, ids, layout, loss_cfg)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for setting in SETTINGS:  # warm-up: first calls allocate and pick kernels
        for b in batches[:2]:
            step(setting, b)
    seconds = dict.fromkeys(SETTINGS, 0.0)
    position = 2
    for _ in range(args.rounds):
        chunk = [batches[(position + k) % len(batches)] for k in range(args.steps)]
        position += args.steps
        for setting in SETTINGS:
            start = time.perf_counter()
            for b in chunk:
                step(setting, b)
            seconds[setting] += time.perf_counter() - start

    steps = args.rounds * args.steps
    base = seconds[SETTINGS[0]]
    print(f"{steps} steps per setting ({args.rounds} interleaved rounds), {args.threads} threads, bf16")
    for attn, dropout in SETTINGS:
        s = seconds[(attn, dropout)]
        print(f"attn {attn:5s} dropout {dropout:.1f}: {1000 * s / steps:7.1f} ms/step  speed-up {base / s:.2f}x")


if __name__ == "__main__":
    main()
