"""PAD distillation: a frozen text teacher teaches a speech SSL student on paired speech and transcripts.

The method is docs/methods.md section 2; how it runs here (which layers, what is switched off while distilling,
attention maps, the teacher cache, batching, outputs) is section 3. The teacher is any transformers text encoder
(hub name or folder), the student any wav2vec2-style speech model (HuBERT, wav2vec 2.0, WavLM); the loss is
`toolkit.losses.pad.pad_loss` (`loss:` is a `PADLossConfig`). A linear projection bridges different hidden sizes.

Training follows the toolkit's rules: AdamW, warmup and decay, clipping and accumulation, autocast, checkpoints
that resume exactly after kill -9 (on CPU), DDP under torchrun, one writer per output folder, and a rerun after
completion that says so. Outputs in --out: config.yaml, data.json, train.log, curves.csv, checkpoints/,
teacher_cache/, model/ (the distilled student), projection.pt (when there is a projection) and done.json.

Length: over 500 lines because it still holds three jobs (the paired data and teacher cache, the student's layer
capture, the training loop); the loop skeleton it shares with the other trainers is to move into one engine.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from toolkit.config import save_config, to_dict
from toolkit.datadir import DataDir, load_data_dir
from toolkit.fileio import atomic_write
from toolkit.hardware import autocast, check_precision, resolve_precision
from toolkit.losses.pad import PADLossConfig, pad_loss
from toolkit.models.ssl_student import (
    Student,
    StudentWithProjection,
    load_student,
    num_frames,
    prepare_wave,
    save_student,
)
from toolkit.models.teacher_cache import (
    TeacherEntry,
    check_model_source,
    collate_entries,
    encode_texts,
    load_text_teacher,
    load_text_tokenizer,
    max_text_tokens,
    prepare_text,
    prior_as_attention,
    resolve_packaged_model,
    teacher_entries,
    tokenize,
)
from toolkit.train import distributed, run_dir
from toolkit.train.checkpoint import list_checkpoints, load_latest, restore, rng_state, save_checkpoint
from toolkit.train.curves import append_curve
from toolkit.train.data import make_batches, shard_batches, spread_subset
from toolkit.train.engine import PROGRESS_INTERVAL_S, OptimConfig, make_optimizer, setup_logging, step_seed
from toolkit.train.numerics import non_finite_loss
from toolkit.train.schedule import lr_multiplier

log = logging.getLogger("toolkit.distill")
CURVE_COLUMNS = ("epoch", "step", "train_loss", "dev_loss", "lr", "elapsed_s")
LENGTH_UNITS_PER_SECOND = 100  # batching works in centiseconds of audio


# ---------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class DistillOptimConfig(OptimConfig):
    """toolkit.train.engine.OptimConfig with distillation's defaults."""

    lr: float = 5e-5  # peak learning rate (our choice: a fine-tuning rate for a pretrained student)
    weight_decay: float = 0.01
    schedule: str = "linear"


@dataclass
class DistillBatchConfig:
    max_batch_seconds: float = 80.0  # padded audio seconds per batch (longest x count)
    max_seconds: float = 20.0  # longer utterances are skipped (and counted): no crops in distillation
    max_utts: int | None = None  # optional cap on utterances per batch

    def __post_init__(self):
        if self.max_seconds <= 0 or self.max_batch_seconds < self.max_seconds:
            raise ValueError("batching.max_seconds must be > 0 and batching.max_batch_seconds >= max_seconds")
        if self.max_utts is not None and self.max_utts < 1:
            raise ValueError(f"batching.max_utts must be >= 1 or null, got {self.max_utts}")


@dataclass
class DistillDevConfig:
    holdout_fraction: float = 0.05  # without --dev: this share of the paired data is held out (0: no dev loss)
    max_utts: int | None = 200  # dev loss on N dev utterances spread over the set (null: all)
    every_steps: int = 0  # also every N steps (0: only at the end of every epoch)

    def __post_init__(self):
        if not 0 <= self.holdout_fraction < 1:
            raise ValueError(f"dev.holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        if (self.max_utts is not None and self.max_utts < 1) or self.every_steps < 0:
            raise ValueError("dev.max_utts must be >= 1 or null and dev.every_steps >= 0")


@dataclass
class DistillConfig:
    teacher: str = "bert-base-uncased"  # text encoder: hub name or folder (the paper's teacher)
    student: str = "facebook/wav2vec2-base"  # speech SSL model: hub name or folder (the paper's student)
    student_layer: int | None = None  # null: last_hidden_state; i: hidden_states[i]
    loss: PADLossConfig = field(default_factory=PADLossConfig)
    optim: DistillOptimConfig = field(default_factory=DistillOptimConfig)
    batching: DistillBatchConfig = field(default_factory=DistillBatchConfig)
    dev: DistillDevConfig = field(default_factory=DistillDevConfig)
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps; the schedule then ends there too
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (GPU only); auto: toolkit.hardware picks for this host
    seed: int = 1
    teacher_cache: bool = True  # teacher outputs computed once and cached (else the teacher runs every batch)
    checkpoint_every_steps: int = 100  # plus one at the end of every epoch
    keep_last: int = 2
    log_every_steps: int = 10
    freeze_feature_encoder: bool = True
    spec_augment: bool = False
    student_config: dict[str, Any] = field(default_factory=dict)  # student config overrides while distilling
    lowercase_text: bool = False  # lowercase transcripts before the teacher's tokenizer (e.g. LibriSpeech + cased)

    def __post_init__(self):
        for name in ("teacher", "student"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"{name} must name a hub model or a local folder")
        if self.student_layer is not None and self.student_layer < 0:
            raise ValueError(f"student_layer must be null (the last layer) or >= 0, got {self.student_layer}")
        check_precision(self.precision)
        if self.epochs < 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError("epochs and max_steps must be >= 1")
        if self.checkpoint_every_steps < 1 or self.keep_last < 1 or self.log_every_steps < 1:
            raise ValueError("checkpoint_every_steps, keep_last and log_every_steps must be >= 1")
        if not isinstance(self.student_config, dict) or not all(isinstance(k, str) for k in self.student_config):
            raise ValueError(f"student_config must be a mapping of config options, got {self.student_config!r}")


@dataclass
class DistillPaths:
    data: Path  # paired Kaldi data dir: wav.scp + text
    out: Path
    dev: Path | None = None  # held-out data dir; None: dev.holdout_fraction of `data`
    teacher_cache: Path | None = None  # None: out/teacher_cache


def needs_speech_attention(loss: PADLossConfig) -> bool:
    """Whether the loss reads P_S (the student's attention maps)."""
    kinds = [loss.global_kind, loss.local_kind] if loss.kind == "joint" else [loss.kind]
    return any(
        (k == "pad_glob" and loss.prior == "asp") or (k == "pad_slocal" and loss.anchors == "asp") for k in kinds
    )


def needs_text_attention(loss: PADLossConfig) -> bool:
    """Whether the loss reads P_T (the teacher's attention maps)."""
    kinds = [loss.global_kind, loss.local_kind] if loss.kind == "joint" else [loss.kind]
    return loss.prior == "asp" and any(k.startswith("pad_") for k in kinds)


def _plain(cfg: DistillConfig) -> dict:
    """The config as YAML reads it back (tuples become lists), to compare with a saved config.yaml."""
    return yaml.safe_load(yaml.safe_dump(to_dict(cfg), sort_keys=False))


# ---------------------------------------------------------------------------------------------------------------
# Data


@dataclass
class PairedSet:
    data: DataDir
    utts: list[str]
    seconds: dict[str, float]
    texts: dict[str, str]  # as given to the teacher (lowercased if configured)


def open_paired(path: Path) -> DataDir:
    data = load_data_dir(path)
    for table in ("wav.scp", "text"):
        if not data.has(table):
            raise FileNotFoundError(f"{path}: no {table} (paired data needs audio and transcripts)")
    if not data.utt_ids:
        raise ValueError(f"{path}: no utterances")
    for utt in data.utt_ids:
        if utt not in data["text"]:
            raise ValueError(f"{path / 'text'}: no transcript for utterance '{utt}'")
    return data


def holdout(utts: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, dev): `fraction` of the utterances (at least one, when there are two or more) picked with `seed`."""
    if fraction <= 0 or len(utts) < 2:
        return list(utts), []
    count = min(len(utts) - 1, max(1, round(fraction * len(utts))))
    dev = set(random.Random(seed).sample(sorted(utts), count))
    return [u for u in utts if u not in dev], [u for u in utts if u in dev]


def select(
    data: DataDir,
    utts: list[str],
    cfg: DistillConfig,
    student: Student,
    tokenizer,
    text_limit: int,
) -> tuple[PairedSet, dict[str, int]]:
    """The usable utterances and the counts of those skipped, by reason."""
    seconds = data.durations()
    texts = {u: prepare_text(data["text"][u], cfg.lowercase_text) for u in utts}
    tokens = dict(zip(utts, tokenize(tokenizer, [texts[u] for u in utts]), strict=True)) if utts else {}
    frames = num_frames(student, [int(seconds[u] * student.sample_rate) for u in utts]).tolist() if utts else []
    skipped = {"too_long": 0, "too_short": 0, "empty_text": 0, "text_too_long": 0}
    kept = []
    for utt, n_frames in zip(utts, frames, strict=True):
        ids, special = tokens[utt]
        if seconds[utt] > cfg.batching.max_seconds:
            skipped["too_long"] += 1
        elif n_frames < 1:
            skipped["too_short"] += 1
        elif not any(not s for s in special):
            skipped["empty_text"] += 1
        elif len(ids) > text_limit:
            skipped["text_too_long"] += 1
        else:
            kept.append(utt)
    return PairedSet(data, kept, {u: seconds[u] for u in kept}, {u: texts[u] for u in kept}), skipped


def batch_lengths(paired: PairedSet) -> list[int]:
    return [max(1, round(paired.seconds[u] * LENGTH_UNITS_PER_SECOND)) for u in paired.utts]


# ---------------------------------------------------------------------------------------------------------------
# Outputs


def trim_curves(out: Path, step: int) -> None:
    """After a resume, drop the rows logged after the checkpoint (they are about to be trained again)."""
    path = out / "curves.csv"
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[1]) <= step]
    with atomic_write(path) as f:
        csv.writer(f).writerows(kept)


# ---------------------------------------------------------------------------------------------------------------
# Training


def distill(
    cfg: DistillConfig, paths: DistillPaths, device: torch.device | str = "cpu", stop_after_steps: int | None = None
) -> dict:
    """Distil (or resume, or report a finished run) into paths.out. Returns a summary; "already_complete" when the
    run had finished before, "stopped" when `stop_after_steps` ended it early."""
    with distributed.session(torch.device(device)) as dist, run_dir.claimed(paths.out, dist.is_main):
        return _distill(cfg, paths, dist, stop_after_steps)


def _distill(
    cfg: DistillConfig, paths: DistillPaths, dist: distributed.Distributed, stop_after_steps: int | None
) -> dict:
    device = dist.device
    out = paths.out
    saved, done_file = out / "config.yaml", out / "done.json"
    started = bool(list_checkpoints(out / "checkpoints")) or (out / "model").exists() or done_file.exists()
    data = {"the paired training set": paths.data, "the dev set": paths.dev}
    run_dir.check_resume(out, _plain(cfg), data, started, dist.is_main)
    if done_file.exists() and (out / "model" / "config.json").is_file():
        return {**json.loads(done_file.read_text()), "already_complete": True}

    from transformers import AutoConfig

    teacher_name = resolve_packaged_model(cfg.teacher)
    check_model_source(teacher_name, "teacher")
    train_data = open_paired(paths.data)
    dev_data = open_paired(paths.dev) if paths.dev is not None else train_data
    setup_logging(out, dist.is_main)
    if dist.is_main:
        save_config(cfg, saved)
    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device, dist=dist))
    began = time.time()

    # Models first: their configs decide which utterances are usable (frames, token limit).
    tokenizer = load_text_tokenizer(teacher_name)
    teacher_config = AutoConfig.from_pretrained(teacher_name)
    teacher_dim, teacher_layers = int(teacher_config.hidden_size), int(teacher_config.num_hidden_layers)
    torch.manual_seed(cfg.seed)
    student = load_student(
        cfg.student,
        device,
        attention=needs_speech_attention(cfg.loss),
        layer=cfg.student_layer,
        config_overrides=cfg.student_config,
        spec_augment=cfg.spec_augment,
        freeze_feature_encoder=cfg.freeze_feature_encoder,
        attention_layers=cfg.loss.speech_asp_layers or (),
    )
    student_dim = int(student.model.config.hidden_size)
    # (our choice) a projection only when the sizes differ; trained with the student, thrown away afterwards
    projection = (torch.nn.Linear(student_dim, teacher_dim) if student_dim != teacher_dim else torch.nn.Identity()).to(
        device
    )

    if paths.dev is None:
        train_ids, dev_ids = holdout(train_data.utt_ids, cfg.dev.holdout_fraction, cfg.seed)
    else:
        train_ids, dev_ids = train_data.utt_ids, dev_data.utt_ids
    limit = max_text_tokens(teacher_config, tokenizer)
    train_set, train_skipped = select(train_data, train_ids, cfg, student, tokenizer, limit)
    dev_set, dev_skipped = select(dev_data, dev_ids, cfg, student, tokenizer, limit)
    # Spread over the dev set: its first N utterances (sorted by id) would be its first speaker or two.
    dev_set.utts = spread_subset(dev_set.utts, cfg.dev.max_utts)
    for name, skipped in (("training", train_skipped), ("dev", dev_skipped)):
        if any(skipped.values()):
            log.info(
                f"skipped {sum(skipped.values())} {name} utterances: {skipped['too_long']} longer than "
                f"batching.max_seconds={cfg.batching.max_seconds:g} s, {skipped['too_short']} shorter than one "
                f"frame, {skipped['empty_text']} with no text token, {skipped['text_too_long']} with more than "
                f"{limit} tokens"
            )
    if not train_set.utts:
        raise ValueError(f"{paths.data}: no usable training utterance (see {out / 'train.log'})")

    # The teacher: cached outputs (computed once), or the model itself, run on every batch.
    entries: dict[str, TeacherEntry] = {}
    teacher = None
    if cfg.teacher_cache:
        if not dist.is_main:
            dist.barrier()  # the main process fills the cache first; the others then read it
        cache_dir = paths.teacher_cache or out / "teacher_cache"
        texts = {u: train_data["text"][u] for u in train_set.utts}
        for u in dev_set.utts:
            if texts.setdefault(u, dev_data["text"][u]) != dev_data["text"][u]:
                raise ValueError(
                    f"utterance '{u}' is in {paths.data} and in {paths.dev} with different transcripts; "
                    "utterance ids must be unique"
                )
        bar = tqdm(
            total=len(texts),
            desc="teacher outputs",
            mininterval=PROGRESS_INTERVAL_S,
            leave=False,
            disable=not dist.is_main,
        )
        entries, counts = teacher_entries(
            teacher_name, texts, cfg.loss.text_asp_layers, cfg.lowercase_text, cache_dir, device, progress=bar.update
        )
        bar.close()
        if dist.is_main:
            dist.barrier()
        log.info(f"teacher outputs: {counts['cached']} cached, {counts['computed']} computed ({cache_dir})")
    else:
        teacher = load_text_teacher(teacher_name, device)
    text_attention = needs_text_attention(cfg.loss)

    def text_batch(paired: PairedSet, utts: list[str]):
        if teacher is None:
            batch = [entries[u] for u in utts]
        else:
            batch = encode_texts(teacher[0], teacher[1], [paired.texts[u] for u in utts], cfg.loss.text_asp_layers)
        return collate_entries(batch, device)

    net = StudentWithProjection(student, projection, cfg.student_layer, device)
    # Layers above student_layer, and unused embeddings (masked_spec_embed), get no gradient: DDP must allow that.
    ddp_net = dist.wrap(net, find_unused_parameters=True)

    def batch_loss(
        paired: PairedSet, utts: list[str], forward: torch.nn.Module = net
    ) -> tuple[torch.Tensor, dict[str, float]]:
        text = text_batch(paired, utts)
        waves = [prepare_wave(student, paired.data.wave(u, student.sample_rate)) for u in utts]
        with autocast(cfg.precision, device):
            speech, mask, attentions = forward(waves)
        text_attn = prior_as_attention(text.prior, text.mask, teacher_layers) if text_attention else None
        return pad_loss(
            cfg.loss,
            speech.float(),
            mask,
            text.hidden,
            text.mask,
            speech_attn=attentions,
            text_attn=text_attn,
            text_local_mask=text.local_mask,
        )

    @torch.inference_mode()
    def evaluate() -> float | None:
        if not dev_set.utts:
            return None
        student.model.eval()
        projection.eval()
        total, count = 0.0, 0
        budget = int(cfg.batching.max_batch_seconds * LENGTH_UNITS_PER_SECOND)
        for indices in make_batches(batch_lengths(dev_set), budget, 0, 0, cfg.batching.max_utts, shuffle=False):
            utts = [dev_set.utts[i] for i in indices]
            loss, _ = batch_loss(dev_set, utts)
            total += loss.item() * len(utts)  # pad_loss is a mean over the utterances of the batch
            count += len(utts)
        student.model.train()
        projection.train()
        return total / count

    trainable = torch.nn.ModuleList([student.model, projection])
    optimizer = make_optimizer(trainable, cfg)
    lengths = batch_lengths(train_set)
    budget = int(cfg.batching.max_batch_seconds * LENGTH_UNITS_PER_SECOND)
    batches_per_epoch = len(
        shard_batches(make_batches(lengths, budget, cfg.seed, 0, cfg.batching.max_utts), 0, dist.world)
    )
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.optim.grad_accum))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    o = cfg.optim
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_multiplier(s, total_steps, o.warmup_steps, o.schedule, o.final_lr_ratio)
    )
    scaler = torch.amp.GradScaler(enabled=cfg.precision == "fp16" and device.type == "cuda")
    ckpt_dir = out / "checkpoints"
    progress: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "history": []}
    state = load_latest(ckpt_dir)
    if state is not None:
        parts = {"student": student.model, "projection": projection, "optimizer": optimizer}
        progress = restore(state, {**parts, "scheduler": scheduler, "scaler": scaler}, ckpt_dir)
        dist.check_resume(state, ckpt_dir)
        if dist.is_main:
            trim_curves(out, progress["step"])
        log.info(
            f"resumed from {ckpt_dir} at step {progress['step']} "
            f"(epoch {progress['epoch'] + 1}, batch {progress['batch']})"
        )

    def checkpoint() -> None:
        if dist.is_main:
            snapshot = {
                "student": student.model.state_dict(),
                "projection": projection.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "progress": progress,
                **dist.checkpoint_fields(),
            }
            save_checkpoint(ckpt_dir, progress["step"], snapshot, cfg.keep_last)
        dist.barrier()

    def dev_eval(epoch: int) -> float | None:
        """The dev loss, computed by the main process (the others wait for it)."""
        dev_loss = evaluate() if dist.is_main else None
        dist.barrier()
        if dev_loss is not None:
            progress["history"].append({"epoch": epoch + 1, "step": progress["step"], "dev_loss": dev_loss})
            log.info(f"dev loss at step {progress['step']} (epoch {epoch + 1}): {dev_loss:.4f}")
            append_curve(
                out,
                CURVE_COLUMNS,
                epoch=epoch + 1,
                step=progress["step"],
                dev_loss=dev_loss,
                elapsed_s=round(time.time() - start, 1),
            )
        return dev_loss

    params = sum(p.numel() for p in trainable.parameters() if p.requires_grad)
    log.info(
        f"teacher {cfg.teacher} ({teacher_dim} dims), student {cfg.student} ({student_dim} dims, layer "
        f"{'last' if cfg.student_layer is None else cfg.student_layer}, "
        f"{'eager attention for P_S' if student.attention else 'no attention maps'}), "
        f"{'projection ' + str(student_dim) + ' -> ' + str(teacher_dim) if student_dim != teacher_dim else 'no projection'}"
        f"; loss {cfg.loss.kind}; {len(train_set.utts)} training utterances "
        f"({sum(train_set.seconds.values()) / 3600:.2f} h), {len(dev_set.utts)} dev, {batches_per_epoch} batches per "
        f"epoch, {params / 1e6:.2f}M trainable parameters, {total_steps} optimizer steps "
        f"(setup {time.time() - began:.0f} s)"
    )
    start = time.time()
    first_step = progress["step"]
    done = stopped = False
    dev_loss = None
    for epoch in range(progress["epoch"], cfg.epochs):
        if progress["step"] >= total_steps:
            break  # killed after the last checkpoint but before the model was saved
        batches = make_batches(lengths, budget, cfg.seed, epoch, cfg.batching.max_utts)
        batches = shard_batches(batches, dist.rank, dist.world)
        first = progress["batch"] if epoch == progress["epoch"] else 0
        running = {"loss": 0.0, "n": 0}
        bar = tqdm(
            total=len(batches),
            initial=first,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            mininterval=PROGRESS_INTERVAL_S,
            disable=not dist.is_main,
        )
        for index in range(first, len(batches)):
            # Everything random in a batch (dropout, layerdrop, masking) depends only on (seed, epoch, the batch's
            # position in the whole epoch: shard_batches deals the batches out round-robin).
            seed = step_seed(cfg.seed, epoch * 1_000_000 + index * dist.world + dist.rank)
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)  # transformers draws SpecAugment masks from numpy's global generator
            boundary = (index + 1) % o.grad_accum == 0 or index + 1 == len(batches)
            with dist.no_sync(ddp_net, not boundary):
                loss, stats = batch_loss(train_set, [train_set.utts[i] for i in batches[index]], ddp_net)
                if not math.isfinite(stats["loss"]):
                    utts = [train_set.utts[i] for i in batches[index]]
                    raise non_finite_loss(stats["loss"], progress["step"] + 1, epoch, index, utts)
                scaler.scale(loss / o.grad_accum).backward()
            running["loss"] += stats["loss"]
            running["n"] += 1
            bar.update(1)
            if not boundary:
                continue
            if o.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trainable.parameters(), o.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            progress["step"] += 1
            progress["batch"], progress["epoch"] = index + 1, epoch
            mean_loss = running["loss"] / running["n"]
            bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
            if progress["step"] % cfg.log_every_steps == 0 or progress["step"] >= total_steps:
                elapsed = time.time() - start
                per_step = elapsed / max(1, progress["step"] - first_step)
                log.info(
                    f"epoch {epoch + 1} step {progress['step']}: loss {mean_loss:.4f} "
                    f"lr {scheduler.get_last_lr()[0]:.2e} ({per_step:.2f} s/step)"
                )
                if dist.is_main:
                    append_curve(
                        out,
                        CURVE_COLUMNS,
                        epoch=epoch + 1,
                        step=progress["step"],
                        train_loss=mean_loss,
                        lr=scheduler.get_last_lr()[0],
                        elapsed_s=round(elapsed, 3),
                    )
                running = {"loss": 0.0, "n": 0}
            if progress["step"] >= total_steps:
                done = True
                break
            if cfg.dev.every_steps and progress["step"] % cfg.dev.every_steps == 0:
                dev_eval(epoch)
            if progress["step"] % cfg.checkpoint_every_steps == 0:
                checkpoint()
            if stop_after_steps is not None and progress["step"] - first_step >= stop_after_steps:
                stopped = True
                break
        bar.close()
        if stopped:
            checkpoint()
            log.info(f"stopped after {progress['step'] - first_step} steps at step {progress['step']}; rerun to go on")
            return {"steps": progress["step"], "stopped": True}
        dev_loss = dev_eval(epoch)
        if progress["batch"] >= len(batches):
            progress["epoch"], progress["batch"] = epoch + 1, 0
        checkpoint()
        if done:
            break
    if dev_loss is None and dist.is_main:  # killed between the last checkpoint and the end: the dev loss is owed
        dev_loss = evaluate()
    result = {
        "steps": progress["step"],
        "elapsed_s": round(time.time() - start, 1),
        "dev_loss": dev_loss,
        "train_utts": len(train_set.utts),
        "dev_utts": len(dev_set.utts),
        "skipped": {"train": train_skipped, "dev": dev_skipped},
        "projection": student_dim != teacher_dim,
    }
    if dist.is_main:
        save_student(student, out / "model")
        if student_dim != teacher_dim:
            with atomic_write(out / "projection.pt", mode="wb") as f:
                torch.save({"state_dict": projection.state_dict(), "in": student_dim, "out": teacher_dim}, f)
        with atomic_write(done_file) as f:
            json.dump(result, f, indent=1)
        log.info(f"saved the student to {out / 'model'}")
    dist.barrier()
    return result
