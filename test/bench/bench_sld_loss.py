"""Time of the SLD loss (forward + backward) on one training batch: closed-form KL_speech vs. a dense [N, K] target.

    tools/venv/bin/python test/bench/bench_sld_loss.py [--batch 30] [--length 130] [--rounds 5] [--steps 10]
        [--threads 2]

Why it exists: KL(q' || p) with the smoothed one-hot q' can be computed from log p at the target and the sum of
log p (`toolkit.losses.sld.speech_kl`), instead of building q' as an [N, K] float tensor and taking elementwise
logs and products over it (`kl_target` + `_kl_rows`, the definition, kept for the release's target and for the
tests). Both sides compute the whole `sld_loss` on the same bf16 logits of the embedded recipe's shape (a batch of
the 4,000-token budget, a 256 + 1,000 token vocabulary); the dense side swaps in the definition for `speech_kl`.
`lm` (no KL at all) is timed too, as the floor. The settings take turns in `--rounds` rounds (the machine's speed
drifts); prints ms per loss and the ratio of the dense time to each.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch

from toolkit.hardware import host_summary
from toolkit.losses import sld
from toolkit.losses.sld import KIND_SPEECH, SLDLossConfig, _kl_rows, kl_target, sld_loss
from toolkit.tokenizers.vocab import VocabLayout


def dense_speech_kl(logits, targets, kinds, layout, cfg):
    """KL_speech by its definition: the dense target q' and the KL summed over it."""
    k = layout.speech_size
    rows = (kinds == KIND_SPEECH) & (targets >= layout.speech_offset)
    z = logits[rows][:, layout.speech_offset : layout.speech_offset + k].float()
    log_p = torch.log_softmax(z / cfg.tau, dim=-1)
    q = kl_target(targets[rows] - layout.speech_offset, k, cfg.eps, cfg.tau, release_compat=False)
    n = int(rows.sum())
    return _kl_rows(q, log_p).sum() * cfg.tau**2 / max(n, 1), n


def batch(layout: VocabLayout, size: int, length: int) -> torch.Tensor:
    """Sequences shaped like the recipe's: <bos>, speech tokens, <speech_end>, ~16 text tokens, <text_end>."""
    g = torch.Generator().manual_seed(0)
    speech = length - 20
    ids = torch.empty(size, length, dtype=torch.long)
    ids[:, 0] = layout.bos_id
    ids[:, 1 : speech + 1] = torch.randint(layout.speech_offset, layout.size, (size, speech), generator=g)
    ids[:, speech + 1] = layout.speech_end_id
    ids[:, speech + 2 : length - 1] = torch.randint(layout.text_offset, layout.speech_offset, (size, 17), generator=g)
    ids[:, length - 1] = layout.text_end_id
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=30, help="sequences per batch (30 x 130 ~ the 4,000 budget)")
    parser.add_argument("--length", type=int, default=130)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="losses per setting per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(host_summary())

    layout = VocabLayout(text_size=256, speech_size=1000)
    ids = batch(layout, args.batch, args.length)
    logits = torch.randn(args.batch, args.length, layout.size, generator=torch.Generator().manual_seed(1))
    logits = logits.to(torch.bfloat16).requires_grad_(True)

    def closed() -> None:
        sld_loss(logits, ids, layout, SLDLossConfig(kind="sld"))[0].backward()

    def dense() -> None:
        with mock.patch.object(sld, "speech_kl", dense_speech_kl):
            sld_loss(logits, ids, layout, SLDLossConfig(kind="sld"))[0].backward()

    def floor() -> None:
        sld_loss(logits, ids, layout, SLDLossConfig(kind="lm"))[0].backward()

    settings = {"sld, dense target (definition)": dense, "sld, closed form (toolkit)": closed, "lm (no KL)": floor}
    # The two KL forms must agree before their times mean anything.
    values = {}
    for name, fn in list(settings.items())[:2]:
        logits.grad = None
        fn()
        values[name] = logits.grad.float().clone()
    torch.testing.assert_close(*values.values(), atol=1e-6, rtol=1e-4)

    seconds = dict.fromkeys(settings, 0.0)
    for _ in range(args.rounds):
        for name, fn in settings.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                logits.grad = None
                fn()
            seconds[name] += time.perf_counter() - start
    calls = args.rounds * args.steps
    base = seconds["sld, dense target (definition)"]
    print(
        f"{calls} losses per setting ({args.rounds} rounds), batch {args.batch} x {args.length}, {args.threads} threads"
    )
    for name, s in seconds.items():
        print(f"{name:32s} {1000 * s / calls:7.1f} ms  speed-up {base / s:.2f}x")


if __name__ == "__main__":
    main()
