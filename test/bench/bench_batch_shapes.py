"""Training step time with batch lengths padded up to a multiple (`batching.pad_multiple`) vs. exact lengths, on CPU.

    tools/venv/bin/python test/bench/bench_batch_shapes.py [--tokens egs/mini_synth/asr1/dump/tokens/mfcc_kmeans/train]
        [--multiples 1 16] [--warmup 60] [--steps 60] [--rounds 2] [--threads 2] [--attn sdpa]

Why it exists: on CPU, bf16 matrix products go to oneDNN, which builds (JIT-compiles) a kernel for every new shape
and caches it. Token-budget batches have a new (batch size, length) nearly every step, so most steps pay for new
kernels; lengths padded up to a multiple of 16 leave a few dozen shapes, and after the first steps every kernel
comes from the cache. Each setting trains the embedded recipe's model (bf16 autocast, the `sld` loss) on the batches
`make_batches` gives for the token dir's lengths (random tokens), in a fresh process of its own (the kernel cache is
per process), `--warmup` steps and then `--steps` timed ones; the settings take turns for `--rounds` rounds (the
machine's speed drifts). Prints ms per step, padded tokens per step and the ratio of each setting to the first.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import torch

# Run as a script, this folder is on sys.path: the sequence helpers are bench_train's.
from bench_train import lengths_from, random_sequence  # noqa: E402

from toolkit.losses.sld import SLDLossConfig, sld_loss
from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.vocab import VocabLayout
from toolkit.train.data import collate, make_batches, round_up


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    layout = VocabLayout(text_size=256, speech_size=1000)
    lengths = lengths_from(Path(args.tokens) if args.tokens else None, 15000, 0)
    rng = random.Random(1)
    sequences = [random_sequence(n, layout, rng) for n in lengths]
    padded = [round_up(n, args.worker) for n in lengths]
    batches = make_batches(padded, args.max_tokens, seed=0, epoch=0)
    torch.manual_seed(0)
    model = build_speech_lm(SpeechLMConfig(dropout=0.1, attn_implementation=args.attn), layout).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_cfg = SLDLossConfig(kind="sld")
    seconds, tokens = 0.0, 0
    for index, batch in enumerate(batches[: args.warmup + args.steps]):
        start = time.perf_counter()
        ids, mask = collate([sequences[i] for i in batch], layout.pad_id, args.worker)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=ids, attention_mask=mask).logits
        loss, _ = sld_loss(logits, ids, layout, loss_cfg)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= args.warmup:
            seconds += time.perf_counter() - start
            tokens += ids.numel()
    print(json.dumps({"seconds": seconds, "tokens": tokens, "batches": len(batches)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", default=None, help="token dir whose lengths to use (default: synthetic)")
    parser.add_argument("--multiples", type=int, nargs="+", default=[1, 16], help="pad_multiple settings")
    parser.add_argument("--warmup", type=int, default=60, help="untimed steps first (kernels of the first shapes)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per setting per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attn", default="sdpa", help="attention implementation (sdpa | eager)")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args)
        return

    totals = {m: [0.0, 0, 0] for m in args.multiples}
    for _ in range(args.rounds):
        for multiple in args.multiples:
            command = [sys.executable, __file__, "--worker", str(multiple)]
            for name in ("tokens", "warmup", "steps", "max_tokens", "threads", "attn"):
                value = getattr(args, name)
                if value is not None:
                    command += [f"--{name.replace('_', '-')}", str(value)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            totals[multiple][0] += result["seconds"]
            totals[multiple][1] += result["tokens"]
            totals[multiple][2] = result["batches"]
    steps = args.rounds * args.steps
    base = totals[args.multiples[0]][0]
    print(f"{steps} timed steps per setting after {args.warmup} untimed ({args.rounds} rounds, a process each), ")
    print(f"{args.threads} threads, bf16, attention {args.attn}")
    for multiple, (seconds, tokens, batches) in totals.items():
        print(
            f"pad_multiple {multiple:3d}: {1000 * seconds / steps:7.1f} ms/step  {tokens / steps:6.0f} padded tokens/step"
            f"  {batches} batches per epoch  speed-up {base / seconds:.2f}x"
        )


if __name__ == "__main__":
    main()
