"""The training loop for the speech-text LM: token-budget batches, AdamW with warmup and decay, gradient clipping
and accumulation, dev loss and greedy dev WER every epoch, best and last-N checkpoints, exact resume, DDP, AMP.

Exact resume: the batch order of an epoch depends only on (seed, epoch), and the randomness of each optimizer step
(dropout, time masking) is seeded from (seed, step). A run killed at any moment and restarted from its last
checkpoint therefore ends with the same weights as one never interrupted (on CPU, where kernels are deterministic).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from toolkit.config import save_config, to_dict
from toolkit.decode.greedy import greedy_decode
from toolkit.fileio import atomic_write
from toolkit.hardware import autocast, resolve_precision
from toolkit.losses.sld import sld_loss
from toolkit.models.speech_lm import build_speech_lm, save_speech_lm
from toolkit.scoring.asr import asr_summary, compute_asr
from toolkit.tokenizers.text import TextTokenizer
from toolkit.tokenizers.vocab import VocabLayout
from toolkit.train import distributed, run_dir
from toolkit.train.augment import mask_token, maskable_positions, time_mask
from toolkit.train.checkpoint import list_checkpoints, load_latest, restore, rng_state, save_checkpoint
from toolkit.train.compiling import StepCompiler
from toolkit.train.config import TrainConfig
from toolkit.train.curves import Curves
from toolkit.train.data import (
    Example,
    collate,
    example_prompt,
    example_sequence,
    load_examples,
    make_batches,
    sequence_length,
    shard_batches,
    spread_subset,
)
from toolkit.train.engine import PROGRESS_INTERVAL_S, make_optimizer, setup_logging, step_seed
from toolkit.train.numerics import non_finite_loss
from toolkit.train.schedule import lr_multiplier

log = logging.getLogger("toolkit.train")
# A recipe tees the progress bar into a log file: redraw often on a terminal, rarely otherwise.


@dataclass
class TrainPaths:
    train: Path  # token dir of the training set (speech, text)
    valid: Path  # token dir of the dev set
    tokenizers: Path  # exp/tokenizers/<name>: vocab.json, text/, units/
    out: Path  # exp/<tag>


def forward_loss(model, inputs: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor, layout, cfg: TrainConfig):
    """The model on `inputs` (possibly time-masked) and the loss against the unmasked `ids`: one training step's
    forward, the part that `compile` compiles. `cfg.precision` is the resolved one (fp32, bf16 or fp16)."""
    with autocast(cfg.precision, inputs.device):
        # No KV cache: training never reuses one, and building it costs copies and (compiled) recompiles.
        logits = model(input_ids=inputs, attention_mask=mask, use_cache=False).logits
    return sld_loss(logits, ids, layout, cfg.loss)


def compute_batch_loss(
    model, batch: list[Example], layout, cfg: TrainConfig, device, generator=None, forward: Callable = forward_loss
):
    """Loss of one batch; with a generator (training) inputs are time-masked, the targets never are. `forward` is
    forward_loss or its compiled version."""
    sequences = [example_sequence(e, layout, cfg.use_bos) for e in batch]
    ids, mask = collate(sequences, layout.pad_id, cfg.batching.pad_to_multiple)
    inputs = ids
    if generator is not None and cfg.time_mask_p > 0:
        maskable = maskable_positions(ids, layout, cfg.time_mask_scope)
        inputs = time_mask(ids, cfg.time_mask_p, mask_token(layout, cfg.time_mask_scope), maskable, generator)
    return forward(model, inputs.to(device), mask.to(device), ids.to(device), layout, cfg)


@torch.inference_mode()
def evaluate(model, examples: list[Example], layout, tokenizer, cfg: TrainConfig, device) -> dict[str, float]:
    """Teacher-forced dev loss over all dev utterances and greedy WER over dev.max_utts of them, evenly spread."""
    model.eval()
    total, count = 0.0, 0
    lengths = [sequence_length(e, cfg.use_bos) for e in examples]
    for batch in make_batches(
        lengths, cfg.batching.max_tokens, 0, 0, shuffle=False, pad_to_multiple=cfg.batching.pad_to_multiple
    ):
        loss, stats = compute_batch_loss(model, [examples[i] for i in batch], layout, cfg, device)
        total += loss.item() * len(batch)
        count += len(batch)
    result = {"dev_loss": total / max(1, count)}
    if cfg.dev.decode_wer:
        subset = spread_subset(examples, cfg.dev.max_utts)
        prompts = [example_prompt(e, layout, cfg.use_bos) for e in subset]
        hyps = greedy_decode(model, prompts, layout, max_tokens=cfg.dev.max_tokens)
        refs = {e.uttid: tokenizer.decode([t - layout.text_offset for t in e.text]) for e in subset}
        hyp_text = {
            e.uttid: tokenizer.decode([t - layout.text_offset for t in h]) for e, h in zip(subset, hyps, strict=True)
        }
        result["dev_wer"] = asr_summary(compute_asr(refs, hyp_text))["wer"]
    model.train()
    return result


def train(cfg: TrainConfig, paths: TrainPaths, device: torch.device) -> dict[str, float]:
    """Train (or resume) on `device`; under torchrun, one DDP process per GPU or CPU process."""
    # The process group is destroyed on every exit, a config error included, so that torchrun's peers are released.
    with distributed.session(device) as dist, run_dir.claimed(paths.out, dist.is_main):
        return _train(cfg, paths, dist)


def _train(cfg: TrainConfig, paths: TrainPaths, dist: distributed.Distributed) -> dict[str, float]:
    device = dist.device
    setup_logging(paths.out, dist.is_main)
    layout = VocabLayout.load(paths.tokenizers / "vocab.json")
    tokenizer = TextTokenizer.load(paths.tokenizers / "text")
    if cfg.model.init_text_rows and tokenizer.config.kind != "pretrained":
        raise ValueError(
            f"model.init_text_rows keeps the pretrained LM's text rows, but {paths.tokenizers / 'text'} is a "
            f"{tokenizer.config.kind} tokenizer of this corpus: use the tokenizer config `text: {{kind: pretrained, "
            f"pretrained: {cfg.model.init_from}}}`, or set model.init_text_rows=false"
        )
    train_examples = load_examples(paths.train, layout, cfg.batching.max_len)
    valid_examples = load_examples(paths.valid, layout)
    lengths = [sequence_length(e, cfg.use_bos) for e in train_examples]
    saved = paths.out / "config.yaml"
    data = {
        "the training set": paths.train,
        "the dev set": paths.valid,
        "the vocabulary": paths.tokenizers / "vocab.json",
        "the text tokenizer": paths.tokenizers / "text",
    }
    started = bool(list_checkpoints(paths.out / "checkpoints"))
    run_dir.check_resume(paths.out, to_dict(cfg), data, started, dist.is_main)
    if dist.is_main:
        save_config(cfg, saved)
        layout.save(paths.out / "vocab.json")
        run_dir.keep_tokenizers(paths.tokenizers, paths.out / "tokenizers")

    # `precision: auto` becomes what this host runs fastest; the saved config keeps what the user asked for.
    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device, dist=dist))

    torch.manual_seed(cfg.seed)
    model = build_speech_lm(cfg.model, layout).to(device)
    optimizer = make_optimizer(model, cfg)

    def epoch_batches(epoch: int) -> list[list[int]]:
        b = cfg.batching
        return make_batches(lengths, b.max_tokens, cfg.seed, epoch, b.max_sequences, pad_to_multiple=b.pad_to_multiple)

    # The same batching as the epochs below, so that the schedule ends where training does.
    batches_per_epoch = len(shard_batches(epoch_batches(0), 0, dist.world))
    # An epoch ends with an optimizer step on its last, partial accumulation too (see the loop): round up.
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.optim.grad_accum))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)

    def schedule(step: int) -> float:
        o = cfg.optim
        return lr_multiplier(step, total_steps, o.warmup_steps, o.schedule, o.final_lr_ratio)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler(enabled=cfg.precision == "fp16" and device.type == "cuda")
    ckpt_dir = paths.out / "checkpoints"
    progress = {"epoch": 0, "batch": 0, "step": 0, "best": math.inf, "history": []}

    state = load_latest(ckpt_dir)
    if state is not None:
        progress = restore(
            state, {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}, ckpt_dir
        )
        log.info(
            f"resumed from {ckpt_dir} at step {progress['step']} "
            f"(epoch {progress['epoch'] + 1}, batch {progress['batch']})"
        )
    ddp_model = dist.wrap(model)
    compiler = StepCompiler(forward_loss, cfg.compile, device, total_steps, progress.get("compiled"), dist.from_main)
    curves = Curves(paths.out) if dist.is_main else None

    def checkpoint() -> None:
        if dist.is_main:
            snapshot = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "progress": progress,
            }
            save_checkpoint(ckpt_dir, progress["step"], snapshot, cfg.keep_last)
        dist.barrier()

    def end_of_epoch(epoch: int) -> None:
        """Evaluate on dev and keep the model if it is the best so far (also when max_steps ends an epoch early)."""
        metrics = evaluate(model, valid_examples, layout, tokenizer, cfg, device)
        key = "dev_wer" if cfg.dev.decode_wer else "dev_loss"
        improved = metrics[key] < progress["best"]
        entry = {"epoch": epoch + 1, "step": progress["step"], **metrics, "best": improved}
        progress["history"].append(entry)
        summary = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        log.info(f"epoch {epoch + 1} done: {summary}" + (" (best so far)" if improved else ""))
        curves.add(epoch=epoch + 1, step=progress["step"], elapsed_s=time.time() - start, **metrics)
        if improved:
            progress["best"] = metrics[key]
            save_speech_lm(model, paths.out / "best")
            layout.save(paths.out / "best" / "vocab.json")
            with atomic_write(paths.out / "best" / "best.json") as f:
                json.dump(entry, f, indent=1)

    log.info(
        f"{len(train_examples)} training utterances, {batches_per_epoch} batches per epoch per process, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {total_steps} optimizer steps"
    )
    model.train()
    start = time.time()
    done = False
    for epoch in range(progress["epoch"], cfg.epochs):
        batches = shard_batches(epoch_batches(epoch), dist.rank, dist.world)
        first = progress["batch"] if epoch == progress["epoch"] else 0
        running, running_n = 0.0, 0
        bar = tqdm(
            total=len(batches),
            initial=first,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not dist.is_main,
            mininterval=PROGRESS_INTERVAL_S,
        )
        for index in range(first, len(batches)):
            # The randomness of a batch (dropout, time masking) depends only on (seed, epoch, batch): resume-exact.
            torch.manual_seed(step_seed(cfg.seed, epoch * 1_000_000 + index))
            generator = torch.Generator().manual_seed(step_seed(cfg.seed + 1, epoch * 1_000_000 + index))
            batch = [train_examples[i] for i in batches[index]]
            boundary = (index + 1) % cfg.optim.grad_accum == 0 or index + 1 == len(batches)
            with dist.no_sync(ddp_model, not boundary):
                loss, stats = compute_batch_loss(ddp_model, batch, layout, cfg, device, generator, compiler.forward)
                value = loss.item()
                if not math.isfinite(value):
                    raise non_finite_loss(value, progress["step"] + 1, epoch, index, [e.uttid for e in batch])
                scaler.scale(loss / cfg.optim.grad_accum).backward()
            running += value
            running_n += 1
            bar.update(1)
            if not boundary:
                continue
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            progress["step"] += 1
            progress["batch"], progress["epoch"] = index + 1, epoch
            compiler.step_done(progress["step"])
            progress["compiled"] = compiler.decision
            bar.set_postfix(loss=f"{running / running_n:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
            if progress["step"] % cfg.log_every_steps == 0:
                details = " ".join(f"{k} {v:.4f}" for k, v in stats.items() if k != "loss" and not k.startswith("n_"))
                log.info(f"epoch {epoch + 1} step {progress['step']}: loss {running / running_n:.4f} ({details})")
                if curves:
                    curves.add(
                        epoch=epoch + 1,
                        step=progress["step"],
                        train_loss=running / running_n,
                        lr=scheduler.get_last_lr()[0],
                        elapsed_s=time.time() - start,
                    )
                running, running_n = 0.0, 0
            if progress["step"] % cfg.checkpoint_every_steps == 0:
                checkpoint()
            if cfg.max_steps and progress["step"] >= cfg.max_steps:
                done = True
                break
        bar.close()
        finished_epoch = not done or progress["batch"] >= len(batches)
        if dist.is_main:
            end_of_epoch(epoch)
        if finished_epoch:
            progress["epoch"], progress["batch"] = epoch + 1, 0
        checkpoint()
        if done:
            break
    return {"steps": progress["step"], "best": progress["best"], "elapsed_s": time.time() - start}
