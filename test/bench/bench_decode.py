"""Decoding speed: toolkit's batched greedy decoding vs transformers' `generate`, one utterance at a time.

    HF_HUB_OFFLINE=1 tools/venv/bin/python test/bench/bench_decode.py [--n 200] [--train-seconds 45] [--threads N]
        [--device cpu|cuda]

A default-size Llama speech LM (4 layers, hidden 256) is first trained for a short while on a synthetic task, so its
hypotheses are real transcripts of varying length rather than one token repeated: each "word" (text token) is
spoken as 2-3 speech units, each unit lasting 1-3 frames, with 10% of the frames replaced by noise, and the words
follow a small Markov grammar. Then the same prompts are decoded (a) by `greedy_decode` (batched, KV cache) and
(b) by `model.generate` (greedy, one utterance at a time, the same text-only restriction as a logits processor and
the same token limit); the hypotheses must be identical. For context, (c) times `model.generate` on left-padded
batches of the same size, and (d) `greedy_decode` under bf16 autocast (hypotheses may differ slightly from fp32; the
prompt forward dominates the cost and bf16 matmuls are ~3x faster on CPUs with avx512_bf16; on a CPU without native
bf16, where `precision: auto` decodes in fp32, (d) is left out: it would take minutes). Training runs in the precision
`auto` picks. Prints the host first, then utterances per second and the ratios.
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from toolkit.decode.greedy import greedy_decode, left_pad, length_batches, new_token_limits, text_only_bias
from toolkit.hardware import autocast, choose_precision, host_summary
from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm, count_params
from toolkit.tokenizers.vocab import VocabLayout

TEXT_SIZE, SPEECH_SIZE = 32, 64


class SyntheticSpeech:
    """Utterances of a toy language: a Markov grammar over words, each word a fixed unit string, stretched and noisy."""

    def __init__(self, layout: VocabLayout, seed: int):
        rng = random.Random(seed)
        self.layout = layout
        self.successors = [rng.sample(range(TEXT_SIZE), 3) for _ in range(TEXT_SIZE)]
        self.units = [rng.sample(range(SPEECH_SIZE), rng.randint(2, 3)) for _ in range(TEXT_SIZE)]

    def utterance(self, rng: random.Random) -> tuple[list[int], list[int]]:
        words = [rng.randrange(TEXT_SIZE)]
        while len(words) < rng.randint(4, 12):
            words.append(rng.choice(self.successors[words[-1]]))
        frames = [u for w in words for u in self.units[w] for _ in range(rng.randint(1, 3))]
        frames = [rng.randrange(SPEECH_SIZE) if rng.random() < 0.1 else u for u in frames]
        return self.layout.speech_ids(frames), self.layout.text_ids(words)

    def prompt(self, speech: list[int]) -> list[int]:
        return [self.layout.bos_id, *speech, self.layout.speech_end_id]

    def sequence(self, speech: list[int], text: list[int]) -> list[int]:
        return self.prompt(speech) + text + [self.layout.text_end_id]


def train(model, data: SyntheticSpeech, seconds: float, seed: int, device: torch.device, precision: str) -> int:
    """Full next-token CE on whole sequences, autocast in `precision`, AdamW; returns the number of steps done."""
    rng = random.Random(seed)
    optim = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.98))
    model.train()
    start, steps = time.time(), 0
    while time.time() - start < seconds:
        seqs = [data.sequence(*data.utterance(rng)) for _ in range(32)]
        width = max(map(len, seqs))
        ids = torch.tensor([s + [data.layout.pad_id] * (width - len(s)) for s in seqs], device=device)
        mask = (ids != data.layout.pad_id).long()
        for group in optim.param_groups:  # short linear warmup: a fresh model diverges at full lr
            group["lr"] = 2e-3 * min(1.0, (steps + 1) / 30)
        with autocast(precision, device):
            loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        steps += 1
        if steps % 25 == 0:
            print(f"  step {steps}  loss {loss.item():.3f}  {time.time() - start:.0f}s", flush=True)
    return steps


class TextOnly(LogitsProcessor):
    def __init__(self, bias: torch.Tensor):
        self.bias = bias

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores + self.bias


def generation_config(layout: VocabLayout, max_new_tokens: int) -> GenerationConfig:
    return GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        eos_token_id=layout.text_end_id,
        pad_token_id=layout.pad_id,
        bos_token_id=layout.bos_id,
    )


def strip(tokens: list[int], layout: VocabLayout) -> list[int]:
    """generate's output after the prompt: cut at <text_end> (batched rows are padded after it)."""
    return tokens[: tokens.index(layout.text_end_id)] if layout.text_end_id in tokens else tokens


def hf_one_at_a_time(model, prompts, limits, layout, processors) -> list[list[int]]:
    hyps = []
    with torch.inference_mode():
        for prompt, limit in zip(prompts, limits, strict=True):
            ids = torch.tensor([prompt], device=model.device)
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                generation_config=generation_config(layout, limit),
                logits_processor=processors,
            )
            hyps.append(strip(out[0, len(prompt) :].tolist(), layout))
    return hyps


def hf_batched(model, prompts, limits, layout, processors, max_tokens: int) -> list[list[int]]:
    """generate on left-padded batches (the same batches as greedy_decode); each batch runs to its largest limit,
    so a row may run past its own limit: its hypothesis is cut to that limit afterwards."""
    hyps: list[list[int]] = [[] for _ in prompts]
    costs = [len(p) + n for p, n in zip(prompts, limits, strict=True)]
    with torch.inference_mode():
        for batch in length_batches(costs, max_tokens):
            ids, mask = left_pad([prompts[i] for i in batch], layout.pad_id, model.device)
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=generation_config(layout, max(limits[i] for i in batch)),
                logits_processor=processors,
            )
            for row, i in enumerate(batch):
                hyps[i] = strip(out[row, ids.shape[1] :].tolist()[: limits[i]], layout)
    return hyps


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="utterances to decode")
    parser.add_argument("--train-seconds", type=float, default=45.0)
    parser.add_argument("--max-tokens", type=int, default=8000, help="greedy_decode batch budget")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(host_summary(args.device))
    choice = choose_precision("auto", device)
    print(choice.describe())

    layout = VocabLayout(text_size=TEXT_SIZE, speech_size=SPEECH_SIZE)
    data = SyntheticSpeech(layout, args.seed)
    model = build_speech_lm(SpeechLMConfig(arch="llama"), layout).to(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"torch threads {torch.get_num_threads()}"
    print(f"model: llama, {count_params(model) / 1e6:.2f}M parameters; {where}")
    print(f"training for {args.train_seconds:.0f}s on the synthetic task ...")
    steps = train(model, data, args.train_seconds, args.seed, device, choice.precision)
    model.eval()

    rng = random.Random(args.seed + 1000)
    utts = [data.utterance(rng) for _ in range(args.n)]
    prompts = [data.prompt(speech) for speech, _ in utts]
    refs = [text for _, text in utts]
    limits = new_token_limits(prompts, layout)  # the default limit: 0.5 x speech tokens + 10
    processors = LogitsProcessorList([TextOnly(text_only_bias(layout, model.config.vocab_size, device))])

    # Warm up both paths (first calls allocate and pick kernels).
    greedy_decode(model, prompts[:8], layout)
    hf_one_at_a_time(model, prompts[:2], limits[:2], layout, processors)

    ours, t_ours = timed(lambda: greedy_decode(model, prompts, layout, max_tokens=args.max_tokens))
    theirs, t_theirs = timed(lambda: hf_one_at_a_time(model, prompts, limits, layout, processors))
    batched, t_batched = timed(lambda: hf_batched(model, prompts, limits, layout, processors, args.max_tokens))
    half = None
    if choice.precision != "fp32":
        with autocast(choice.precision, device):
            greedy_decode(model, prompts[:8], layout)
            half, t_half = timed(lambda: greedy_decode(model, prompts, layout, max_tokens=args.max_tokens))

    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    same_batched = sum(a == b for a, b in zip(ours, batched, strict=True))
    exact = sum(h == r for h, r in zip(ours, refs, strict=True))
    mean_len = sum(map(len, ours)) / len(ours)
    print(f"\ntrained {steps} steps; hypotheses: mean {mean_len:.1f} tokens, {exact}/{args.n} exactly right")
    print(f"identical to generate (one at a time): {same}/{args.n};  to generate (batched): {same_batched}/{args.n}")
    print(f"greedy_decode (batched, KV cache):       {args.n / t_ours:8.1f} utt/s  ({t_ours:.2f}s)")
    print(f"generate, one utterance at a time:       {args.n / t_theirs:8.1f} utt/s  ({t_theirs:.2f}s)")
    print(f"generate, left-padded batches:           {args.n / t_batched:8.1f} utt/s  ({t_batched:.2f}s)")
    if half is not None:
        same_half = sum(a == b for a, b in zip(ours, half, strict=True))
        print(
            f"greedy_decode under {choice.precision} autocast:       {args.n / t_half:8.1f} utt/s  ({t_half:.2f}s), "
            f"{same_half}/{args.n} hypotheses as in fp32"
        )
    print(
        f"speed-up vs one at a time: {t_theirs / t_ours:.1f}x  (target >= 3x);  vs batched generate: "
        f"{t_batched / t_ours:.1f}x"
    )
    if same != args.n:
        raise SystemExit("greedy_decode and generate disagree")


if __name__ == "__main__":
    main()
