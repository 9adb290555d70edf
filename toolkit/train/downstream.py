"""SUPERB-protocol downstream training on a frozen upstream: IC, ER or SF heads (toolkit/models/downstream_task.py).
Length: just over 500 lines, the feature cache and evaluation beside the loop; the loop skeleton it shares with the
other trainers is to move into one engine.

The upstream (any transformers wav2vec2-style model, hub name or folder: the recipe passes the distilled student)
never changes, so its hidden states of an utterance are the same every epoch; `cache_features: true` keeps them in
memory (as float16) after their first use, which makes every epoch after the first cost only the head. Its size is
about utterances x seconds x frame rate x (layers + 1) x dim x 2 bytes: 0.5 GB for 3,000 three-second utterances of a
4-layer 256-dim model at 50 Hz, 60 GB for Fluent Speech Commands on a Base model, where it must stay off. With the
cache on, hidden states are rounded to float16 on their first use too, so an epoch reads the same values whether
they come from the cache or not (and a resumed run matches an uninterrupted one).

Training: batches of utterances of similar length up to `batching.max_batch_seconds` of padded audio and
`batching.max_utts` utterances, AdamW (no weight decay on 1-d parameters), warmup then constant/linear/cosine,
gradient clipping and accumulation, an optional step limit. After every epoch a dev pass: accuracy in percent (IC,
ER; an utterance is right only if every head is) or slot-type F1 in percent (SF, with the slot-value CER logged);
the best epoch's head is kept as best.pt. Everything random in a step (the batch order, dropout) depends only on
(seed, epoch, batch), and checkpoints hold the head, optimizer, scheduler, the position in the data and the best
score so far: a run killed at any moment (kill -9) and restarted ends with the same head as one never interrupted.

Several processes: under torchrun (`torchrun --nproc_per_node 4 -m toolkit.bin.train_downstream ...`, one GPU per
process, or CPU processes with gloo) the head is wrapped in DDP and each process trains on its share of every
epoch's batches (toolkit.train.data.shard_batches), so an epoch takes 1/N of the optimizer steps; the gradients of
an optimizer step are averaged over the processes (accumulation steps skip that all-reduce). The upstream is not
wrapped: it has nothing to train. The dev pass runs on the main process alone with the unwrapped head while the others
wait; its metrics are broadcast so every process keeps the same history and best epoch. Only the main process writes
(config, log, curves, checkpoints, best.pt, head.pt), and every process waits for a checkpoint to be complete. A run
resumes on the number of processes it was started with (at an epoch boundary any number will do). One process (no
torchrun) trains exactly as before.

Outputs in --out: config.yaml (resolved; the upstream included), train.log, curves.csv, checkpoints/, best.pt (the
best dev epoch so far) and head.pt (the final choice, written last: the best epoch's head, or the last epoch's when
there is no dev set). A rerun after head.pt exists says so; a different config in a started folder is an error.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from toolkit.config import ConfigError, save_config, to_dict
from toolkit.datadir import DataDir, load_data_dir
from toolkit.hardware import autocast, check_precision, resolve_precision
from toolkit.models.downstream import SlotFillingConfig, Upstream, UtteranceClassifierConfig, pad_hidden_states
from toolkit.models.downstream_task import DownstreamTask, default_label_table, save_task
from toolkit.models.reference_upstreams import load_upstream
from toolkit.scoring.slu import compute_slots, score_intents
from toolkit.train import distributed, run_dir
from toolkit.train.checkpoint import load_latest, restore, rng_state, save_checkpoint
from toolkit.train.curves import append_curve
from toolkit.train.data import make_batches, shard_batches, spread_subset
from toolkit.train.engine import PROGRESS_INTERVAL_S, OptimConfig, make_optimizer, setup_logging, step_seed
from toolkit.train.numerics import non_finite_loss
from toolkit.train.schedule import lr_multiplier

log = logging.getLogger("toolkit.train")
CURVE_COLUMNS = ("epoch", "step", "train_loss", "dev_metric", "dev_cer", "lr", "elapsed_s")


@dataclass
class DownstreamBatchConfig:
    max_batch_seconds: float = 100.0  # padded audio per batch
    max_utts: int | None = 32  # utterances per batch (SUPERB's batch size for IC and ER)

    def __post_init__(self):
        if self.max_batch_seconds <= 0:
            raise ValueError(f"max_batch_seconds must be > 0, got {self.max_batch_seconds}")
        if self.max_utts is not None and self.max_utts < 1:
            raise ValueError(f"max_utts must be >= 1 or null, got {self.max_utts}")


@dataclass
class DownstreamDevConfig:
    max_utts: int | None = None  # dev metric on N utterances spread over the dev set; null: all of them


@dataclass
class DownstreamOptimConfig(OptimConfig):
    """toolkit.train.engine.OptimConfig with SUPERB's defaults for IC/ER/SF: Adam(W) at 1e-4 without a schedule."""

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    schedule: str = "constant"


@dataclass
class DownstreamConfig:
    task: str = "ic"  # ic | er | sf
    upstream: str = ""  # hub name or folder of the frozen upstream (the recipe passes the distilled student)
    label_table: str | None = None  # default: utt2intent (ic), utt2emotion (er), text.slots (sf)
    label_fields: list[str] | None = None  # ic: names of the '|' fields, one head each (FSC: action,object,location)
    classifier: UtteranceClassifierConfig = field(default_factory=UtteranceClassifierConfig)
    slot_filling: SlotFillingConfig = field(default_factory=SlotFillingConfig)
    optim: DownstreamOptimConfig = field(default_factory=DownstreamOptimConfig)
    batching: DownstreamBatchConfig = field(default_factory=DownstreamBatchConfig)
    dev: DownstreamDevConfig = field(default_factory=DownstreamDevConfig)
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps (the schedule ends there)
    cache_features: bool = False  # keep the upstream's hidden states in memory (see the module docstring)
    seed: int = 1
    # auto | fp32 | bf16: autocast of the upstream's forward (the head always runs in fp32); auto: toolkit.hardware
    # picks for this host
    precision: str = "auto"
    checkpoint_every_steps: int = 500  # plus one at the end of every epoch
    keep_last: int = 2
    log_every_steps: int = 50

    def __post_init__(self):
        default_label_table(self.task)
        check_precision(self.precision, ("auto", "fp32", "bf16"))
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or null, got {self.max_steps}")
        if self.optim.grad_accum < 1:
            raise ValueError(f"optim.grad_accum must be >= 1, got {self.optim.grad_accum}")
        if self.label_fields is not None and self.task != "ic":
            raise ValueError("label_fields applies to task ic only")

    @property
    def table(self) -> str:
        return self.label_table or default_label_table(self.task)

    def head_config(self) -> dict:
        return to_dict(self.slot_filling if self.task == "sf" else self.classifier)


@dataclass
class DownstreamPaths:
    train: Path
    out: Path
    valid: Path | None = None


# ---- data ----


@dataclass
class LabelledSet:
    data: DataDir
    utts: list[str]
    labels: dict[str, str]
    seconds: dict[str, float]


def open_labelled(path: Path, table: str | None) -> LabelledSet:
    """A data dir with wav.scp and the task's label table (every utterance labelled); table None: no labels."""
    data = load_data_dir(path)
    for name in ("wav.scp", table):
        if name and not data.has(name):
            raise FileNotFoundError(f"{path}/{name} does not exist: the task needs it (see local/data.sh)")
    if not data.utt_ids:
        raise ValueError(f"{path}: no utterances")
    labels = data[table] if table else {}
    missing = [u for u in data.utt_ids if u not in labels] if table else []
    if missing:
        raise ValueError(
            f"{path}/{table}: {len(missing)} utterance(s) of {path}/wav.scp have no label, e.g. '{missing[0]}'; "
            "fix the table or subset the data dir"
        )
    labels = {u: labels[u] for u in data.utt_ids} if table else {}
    return LabelledSet(data, list(data.utt_ids), labels, data.durations())


class HiddenStates:
    """Hidden states of utterances from the frozen upstream, optionally kept in memory (float16) after first use."""

    def __init__(self, upstream: Upstream, precision: str, cache: bool):
        self.upstream = upstream
        self.precision = precision
        self.cache: dict[tuple[str, str], torch.Tensor] | None = {} if cache else None

    def batch(self, subset: LabelledSet, utts: list[str], name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states [L, B, T, D] (float32, padding zero) and the frame mask [B, T] of `utts`."""
        todo = [u for u in utts if self.cache is None or (name, u) not in self.cache]
        fresh: dict[str, torch.Tensor] = {}
        if todo:
            if getattr(self.upstream, "reads_text", False):  # the ceiling: a text model on the gold transcript
                inputs = [subset.data["text"][u] for u in todo]
            else:
                inputs = [subset.data.wave(u, self.upstream.sample_rate) for u in todo]
            with autocast(self.precision, self.upstream.device):
                hidden, mask = self.upstream(inputs, todo)
            lengths = mask.sum(1).tolist()
            for i, u in enumerate(todo):
                h = hidden[:, i, : int(lengths[i])]
                fresh[u] = h.half() if self.cache is not None else h.float()
                if self.cache is not None:
                    self.cache[(name, u)] = fresh[u].cpu()
        parts = [fresh[u] if u in fresh else self.cache[(name, u)] for u in utts]
        return pad_hidden_states(parts, self.upstream.device)


def frame_lengths(subset: LabelledSet, frame_rate: float) -> list[int]:
    return [max(1, round(subset.seconds[u] * frame_rate)) for u in subset.utts]


# ---- evaluation ----


def evaluate(
    task: DownstreamTask, features: HiddenStates, subset: LabelledSet, utts: list[str], cfg: DownstreamConfig
) -> tuple[dict[str, str], dict[str, float]]:
    """Predictions for `utts` and the dev metrics: {"metric": accuracy or slot-type F1 (%), "cer": SF only}."""
    hyps = predict_set(task, features, subset, utts, cfg.batching, "dev")
    refs = {u: subset.labels[u] for u in utts}
    if task.kind == "sf":
        summary, _ = compute_slots(refs, hyps)
        return hyps, {"metric": float(summary["slot_type_f1"]), "cer": float(summary["slot_value_cer"])}
    summary = score_intents(refs, hyps)
    return hyps, {"metric": float(summary["accuracy"])}


def predict_set(
    task: DownstreamTask,
    features: HiddenStates,
    subset: LabelledSet,
    utts: list[str],
    batching: DownstreamBatchConfig,
    name: str,
    progress: bool = False,
) -> dict[str, str]:
    """uttid -> predicted label string, batched by length."""
    task.head.eval()
    rate = features.upstream.frame_rate
    lengths = [max(1, round(subset.seconds[u] * rate)) for u in utts]
    batches = make_batches(lengths, int(batching.max_batch_seconds * rate), 0, 0, batching.max_utts, shuffle=False)
    hyps: dict[str, str] = {}
    for batch in tqdm(batches, desc=f"predict {name}", disable=not progress, mininterval=PROGRESS_INTERVAL_S):
        ids = [utts[i] for i in batch]
        hidden, mask = features.batch(subset, ids, name)
        hyps.update(zip(ids, task.predict(hidden, mask), strict=True))
    return hyps


class TaskLoss(nn.Module):
    """A task's training loss as a module that owns its head, so that DDP (which wraps a module's forward) averages
    the head's gradients over the processes."""

    def __init__(self, task: DownstreamTask):
        super().__init__()
        self.head = task.head
        self.task = task  # not a module: only the head's parameters are registered

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, labels: list[str], ids: list[str]) -> torch.Tensor:
        return self.task.loss(hidden, mask, labels, ids)


def train_downstream(
    cfg: DownstreamConfig, paths: DownstreamPaths, device: torch.device, stop_after_steps: int | None = None
) -> dict[str, object]:
    """Train (or resume) into paths.out; see the module docstring for what is written. Under torchrun every process
    calls this (one process: `device`; several: DDP, see the module docstring)."""
    if not cfg.upstream:
        raise ConfigError("upstream is not set: give the frozen upstream's hub name or folder (--upstream)")
    with distributed.session(device) as dist, run_dir.claimed(paths.out, dist.is_main):
        return _train(cfg, paths, dist, stop_after_steps)


def _train(
    cfg: DownstreamConfig, paths: DownstreamPaths, dist: distributed.Distributed, stop_after_steps: int | None
) -> dict[str, object]:
    device = dist.device
    out = paths.out
    saved = out / "config.yaml"
    started = (out / "checkpoints").exists() or (out / "head.pt").is_file()
    data = {"the training set": paths.train, "the dev set": paths.valid}
    run_dir.check_resume(out, to_dict(cfg), data, started, dist.is_main)
    if (out / "head.pt").is_file():
        if dist.is_main:
            print(f"{out}: downstream training is complete (head in {out / 'head.pt'}); nothing to do")
        return {"already_complete": True}
    train_set = open_labelled(paths.train, cfg.table)
    valid_set = open_labelled(paths.valid, cfg.table) if paths.valid else None
    dist.barrier()  # every process has read the folder before the main one writes to it
    setup_logging(out, dist.is_main)
    if dist.is_main:
        save_config(cfg, saved)

    torch.manual_seed(cfg.seed)
    upstream = load_upstream(cfg.upstream, device=str(device))
    task = DownstreamTask.build(
        cfg.task,
        [train_set.labels[u] for u in train_set.utts],
        upstream.num_layers,
        upstream.dim,
        cfg.label_fields,
        cfg.classifier,
        cfg.slot_filling,
    )
    if dist.is_main and valid_set is not None and (unknown := task.unknown_labels(valid_set.labels)):
        log.warning(
            f"{paths.valid}/{cfg.table}: {len(unknown)} utterance(s) have a label the training set never has "
            f"(e.g. {unknown[0]}: '{valid_set.labels[unknown[0]]}'); they count as wrong"
        )
    task.head.to(device)
    precision = resolve_precision(cfg.precision, device, ("fp32", "bf16"), dist)
    features = HiddenStates(upstream, precision, cfg.cache_features)

    rate = upstream.frame_rate
    lengths = frame_lengths(train_set, rate)
    budget = int(cfg.batching.max_batch_seconds * rate)
    too_long = [u for u, n in zip(train_set.utts, lengths, strict=True) if n > budget]
    if too_long:
        raise ValueError(
            f"{paths.train}: {len(too_long)} utterance(s) are longer than batching.max_batch_seconds "
            f"({cfg.batching.max_batch_seconds} s), e.g. '{too_long[0]}' ({train_set.seconds[too_long[0]]:.1f} s); "
            "raise it"
        )
    dev_utts = spread_subset(valid_set.utts, cfg.dev.max_utts) if valid_set else []

    optimizer = make_optimizer(task.head, cfg)
    batches_per_epoch = len(
        shard_batches(make_batches(lengths, budget, cfg.seed, 0, cfg.batching.max_utts), 0, dist.world)
    )
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.optim.grad_accum))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)

    def schedule(step: int) -> float:
        o = cfg.optim
        return lr_multiplier(step, total_steps, o.warmup_steps, o.schedule, o.final_lr_ratio)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    ckpt_dir = out / "checkpoints"
    progress: dict = {"epoch": 0, "batch": 0, "step": 0, "history": [], "best": None}
    state = load_latest(ckpt_dir)
    if state is not None:
        progress = restore(state, {"head": task.head, "optimizer": optimizer, "scheduler": scheduler}, ckpt_dir)
        dist.check_resume(state, ckpt_dir)
        log.info(
            f"resumed from {ckpt_dir} at step {progress['step']} "
            f"(epoch {progress['epoch'] + 1}, batch {progress['batch']})"
        )
    # The head's forward and loss go through `model`: DDP around it averages the gradients over the processes.
    model = dist.wrap(TaskLoss(task))

    def checkpoint() -> None:
        if dist.is_main:
            snapshot = {
                "head": task.head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
                "progress": progress,
                **dist.checkpoint_fields(),
            }
            save_checkpoint(ckpt_dir, progress["step"], snapshot, cfg.keep_last)
        dist.barrier()

    def task_state(extra: dict) -> dict:
        return task.state(cfg.head_config(), cfg.upstream, {"config": to_dict(cfg), **extra})

    num_params = sum(p.numel() for p in task.head.parameters())
    per_epoch = "epoch" + (f" per process ({dist.world} processes)" if dist.world > 1 else "")
    log.info(
        f"task {cfg.task} on {cfg.upstream} ({upstream.num_layers} hidden states of {upstream.dim} dims, "
        f"{rate:g} frames/s): {len(train_set.utts)} training utterances "
        f"({sum(train_set.seconds.values()) / 3600:.2f} h), {len(dev_utts)} dev, {batches_per_epoch} batches per "
        f"{per_epoch}, {num_params / 1e6:.2f}M head parameters, {total_steps} optimizer steps"
    )
    start = time.time()
    first_step = progress["step"]
    done = False
    for epoch in range(progress["epoch"], cfg.epochs):
        if cfg.max_steps and progress["step"] >= cfg.max_steps:
            break  # killed after the last checkpoint but before head.pt was written
        batches = shard_batches(
            make_batches(lengths, budget, cfg.seed, epoch, cfg.batching.max_utts), dist.rank, dist.world
        )
        first = progress["batch"] if epoch == progress["epoch"] else 0
        running = {"loss": 0.0, "n": 0}
        bar = tqdm(
            total=len(batches),
            initial=first,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not dist.is_main,
            mininterval=PROGRESS_INTERVAL_S,
        )
        model.train()
        for index in range(first, len(batches)):
            # Dropout: seeded by the batch's position in the whole epoch (shard_batches deals them out round-robin),
            # resume-exact.
            torch.manual_seed(step_seed(cfg.seed, epoch * 1_000_000 + index * dist.world + dist.rank))
            ids = [train_set.utts[i] for i in batches[index]]
            hidden, mask = features.batch(train_set, ids, "train")
            boundary = (index + 1) % cfg.optim.grad_accum == 0 or index + 1 == len(batches)
            with dist.no_sync(model, not boundary):
                loss = model(hidden, mask, [train_set.labels[u] for u in ids], ids)
                if not torch.isfinite(loss):
                    raise non_finite_loss(loss.item(), progress["step"] + 1, epoch, index, ids)
                (loss / cfg.optim.grad_accum).backward()
            running["loss"] += loss.item()
            running["n"] += 1
            bar.update(1)
            if not boundary:
                continue
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(task.head.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            progress["step"] += 1
            progress["batch"], progress["epoch"] = index + 1, epoch
            mean_loss = running["loss"] / running["n"]
            bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
            if progress["step"] % cfg.log_every_steps == 0:
                elapsed = time.time() - start
                log.info(
                    f"epoch {epoch + 1} step {progress['step']}: loss {mean_loss:.4f} "
                    f"lr {scheduler.get_last_lr()[0]:.2e} ({elapsed / max(1, progress['step'] - first_step):.2f} s/step)"
                )
                if dist.is_main:
                    append_curve(
                        out, CURVE_COLUMNS, epoch=epoch + 1, step=progress["step"], train_loss=mean_loss,
                        lr=scheduler.get_last_lr()[0], elapsed_s=elapsed,
                    )  # fmt: skip
                running = {"loss": 0.0, "n": 0}
            if progress["step"] % cfg.checkpoint_every_steps == 0:
                checkpoint()
            if cfg.max_steps and progress["step"] >= cfg.max_steps:
                done = True
                break
            if stop_after_steps is not None and progress["step"] - first_step >= stop_after_steps:
                bar.close()
                checkpoint()
                log.info(f"stopped at step {progress['step']}; rerun the same command to go on")
                return {"stopped": True, "steps": progress["step"]}
        bar.close()
        record: dict = {"epoch": epoch + 1, "step": progress["step"]}
        if valid_set is not None:
            # The main process scores dev with the unwrapped head (the others wait in the broadcast), and every
            # process takes the same metrics: the same history and best epoch everywhere.
            metrics = evaluate(task, features, valid_set, dev_utts, cfg)[1] if dist.is_main else None
            metrics = dist.from_main(metrics)
            record.update(metrics)
            best = progress["best"]
            # Higher is better for both metrics; on a tie the earlier epoch stays (fewer steps, same score).
            if best is None or metrics["metric"] > best["metric"]:
                progress["best"] = record
                if dist.is_main:
                    save_task(task_state({"epoch": epoch + 1, "dev": metrics}), out / "best.pt")
            name = "slot-type F1" if cfg.task == "sf" else "accuracy"
            cer = f", slot-value CER {metrics['cer']:.2f}%" if "cer" in metrics else ""
            log.info(
                f"epoch {epoch + 1} done: dev {name} {metrics['metric']:.2f}%{cer} "
                f"(best {progress['best']['metric']:.2f}% at epoch {progress['best']['epoch']})"
            )
            if dist.is_main:
                append_curve(
                    out, CURVE_COLUMNS, epoch=epoch + 1, step=progress["step"], dev_metric=metrics["metric"],
                    dev_cer=metrics.get("cer", ""), elapsed_s=time.time() - start,
                )  # fmt: skip
        progress["history"].append(record)
        if not done or progress["batch"] >= len(batches):
            progress["epoch"], progress["batch"] = epoch + 1, 0
        checkpoint()
        if done:
            break
    if dist.is_main:
        if valid_set is not None and (out / "best.pt").is_file():
            shutil.copyfile(out / "best.pt", out / "head.pt.tmp")
            os.replace(out / "head.pt.tmp", out / "head.pt")
        else:
            save_task(task_state({"epoch": progress["epoch"], "dev": None}), out / "head.pt")
    dist.barrier()
    best = progress["best"]
    log.info(
        f"saved {out / 'head.pt'}"
        + (f" (epoch {best['epoch']}, dev {best['metric']:.2f}%)" if best else " (last epoch; no dev set)")
    )
    return {
        "steps": progress["step"],
        "elapsed_s": time.time() - start,
        "best": best,
        "train_utts": len(train_set.utts),
    }
