"""The HuBERT-style masked-prediction pretraining loop of a transformers HubertModel on a Kaldi data dir.

Each batch is a set of utterances (long ones cropped at a random frame to `batching.max_seconds`), their frame
targets (units aligned to the encoder's frames, 50 Hz for HuBERT's conv stack) and span masks; the loss is HuBERT's
masked-prediction cross-entropy (toolkit.models.hubert_pretrain). AdamW with warmup and decay, gradient clipping and
accumulation, AMP; dev loss and masked-frame accuracy every epoch; the last `keep_last` checkpoints; the encoder
saved last, atomically, with its preprocessor config (AutoModel / AutoFeatureExtractor load it).

The targets are not computed here: `pretrain` takes a `prepare_targets(cfg, paths, train, valid)` function that
returns the units of every train and dev utterance (toolkit/bin/pretrain_hubert.py passes one that fits and runs a
discretizer), so that the loop never imports the discretizers (dependency direction: bin -> train -> models).

Exact resume: everything random in a batch (crops, masks, dropout) depends only on (seed, epoch, batch), so a run
killed at any moment and restarted from its last checkpoint ends with the same weights as one never interrupted (on
CPU). `stop_after_steps` ends a call after N more optimizer steps with a checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from toolkit.config import save_config, to_dict
from toolkit.datadir import DataDir, load_data_dir
from toolkit.fileio import TableError, iter_table
from toolkit.hardware import autocast, check_precision, resolve_precision
from toolkit.models.hubert_pretrain import (
    SAMPLE_RATE,
    EncoderConfig,
    HubertPretrainModel,
    LossConfig,
    MaskConfig,
    TargetConfig,
    align_targets,
    collate_waves,
    hubert_loss,
    normalize_wave,
    num_frames,
    span_mask,
)
from toolkit.train import run_dir
from toolkit.train.checkpoint import load_latest, restore, rng_state, save_checkpoint
from toolkit.train.config import OptimConfig
from toolkit.train.curves import append_curve
from toolkit.train.data import make_batches
from toolkit.train.engine import PROGRESS_INTERVAL_S, make_optimizer, setup_logging, step_seed
from toolkit.train.numerics import non_finite_loss
from toolkit.train.schedule import lr_multiplier

log = logging.getLogger("toolkit.train")
CURVE_COLUMNS = ("epoch", "step", "train_loss", "train_acc", "dev_loss", "dev_acc", "lr", "elapsed_s")


@dataclass
class BatchingConfig:
    max_batch_seconds: float = 60.0  # padded audio seconds per batch (longest x count)
    max_seconds: float = 8.0  # longer utterances are cropped at a random frame to this length

    def __post_init__(self):
        if self.max_seconds <= 0 or self.max_batch_seconds < self.max_seconds:
            raise ValueError("batching.max_seconds must be > 0 and batching.max_batch_seconds >= max_seconds")


@dataclass
class DevConfig:
    max_utts: int | None = 300  # dev loss/accuracy on the first N dev utterances (None: all)


@dataclass
class PretrainConfig:
    model: EncoderConfig = field(default_factory=EncoderConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    dev: DevConfig = field(default_factory=DevConfig)
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps; the schedule then ends there too
    precision: str = "auto"  # auto | fp32 | bf16 (CPU or GPU) | fp16 (GPU); auto: toolkit.hardware picks for this host
    seed: int = 1
    checkpoint_every_steps: int = 100  # plus one at the end of every epoch
    keep_last: int = 2
    log_every_steps: int = 20

    def __post_init__(self):
        check_precision(self.precision)
        if self.epochs < 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError("epochs and max_steps must be >= 1")
        if self.optim.grad_accum < 1 or self.checkpoint_every_steps < 1 or self.keep_last < 1:
            raise ValueError("optim.grad_accum, checkpoint_every_steps and keep_last must be >= 1")
        if SAMPLE_RATE % self.model.downsampling:
            raise ValueError(f"the conv strides' product {self.model.downsampling} must divide {SAMPLE_RATE}")

    @property
    def frame_rate(self) -> float:
        return SAMPLE_RATE / self.model.downsampling


@dataclass
class Paths:
    train: Path
    valid: Path
    out: Path


# The units of every train and dev utterance: (cfg, paths, train data, dev data) -> (train units, dev units).
TargetPreparer = Callable[
    [PretrainConfig, Paths, DataDir, DataDir], tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
]


# ---- data ----


def open_data_dir(path: Path) -> DataDir:
    data = load_data_dir(path)
    if not data.has("wav.scp"):
        raise FileNotFoundError(f"{path}: no wav.scp")
    if not data.utt_ids:
        raise ValueError(f"{path}: no utterances")
    return data


# ---- targets ----


def read_units(path: Path) -> dict[str, np.ndarray]:
    table = {}
    for lineno, key, value in iter_table(path, allow_empty_value=True):
        try:
            table[key] = np.array([int(u) for u in value.split()], dtype=np.int64)
        except ValueError:
            raise TableError(path, lineno, "expected integer units") from None
    return table


# ---- batches ----


@dataclass
class Batch:
    values: torch.Tensor  # (B, samples)
    attention_mask: torch.Tensor  # (B, samples)
    targets: torch.Tensor  # (B, T)
    valid: torch.Tensor  # (B, T) bool
    masked: torch.Tensor  # (B, T) bool


def make_batch(
    cfg: PretrainConfig,
    data: DataDir,
    units: dict[str, np.ndarray],
    utts: Sequence[str],
    rng: np.random.Generator,
    random_crop: bool,
) -> Batch:
    """Audio, aligned targets and masks of some utterances; long ones cropped at a random (or the first) frame."""
    m = cfg.model
    hop = m.downsampling
    max_samples = int(cfg.batching.max_seconds * SAMPLE_RATE)
    waves, targets = [], []
    for utt in utts:
        wave = data.wave(utt, SAMPLE_RATE)
        aligned = align_targets(units[utt], num_frames(len(wave), m.conv_kernel, m.conv_stride), uttid=utt)
        offset = 0
        if len(wave) > max_samples:
            # Crop at a frame boundary, so the targets shift by whole frames.
            offset = int(rng.integers(0, (len(wave) - max_samples) // hop + 1)) if random_crop else 0
            wave = wave[offset * hop : offset * hop + max_samples]
        frames = num_frames(len(wave), m.conv_kernel, m.conv_stride)
        if frames == 0:
            raise ValueError(f"utterance '{utt}' is shorter than the conv stack's window ({m.receptive_field} samples)")
        targets.append(align_targets(aligned[offset : offset + frames], frames, uttid=utt))
        waves.append(normalize_wave(wave) if m.normalize_audio else wave)
    values, attention_mask = collate_waves(waves)
    lengths = [len(t) for t in targets]
    longest = num_frames(values.shape[1], m.conv_kernel, m.conv_stride)
    padded = torch.zeros((len(utts), longest), dtype=torch.long)
    for row, t in enumerate(targets):
        padded[row, : len(t)] = torch.from_numpy(t)
    valid = torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]
    masked = span_mask(lengths, longest, cfg.mask, rng)
    return Batch(values, attention_mask, padded, valid, masked)


def batch_loss(model: HubertPretrainModel, batch: Batch, cfg: PretrainConfig, device: torch.device):
    with autocast(cfg.precision, device):
        projected = model(batch.values.to(device), batch.attention_mask.to(device), batch.masked.to(device))
    if projected.shape[1] != batch.targets.shape[1]:
        raise RuntimeError(f"the encoder gave {projected.shape[1]} frames, expected {batch.targets.shape[1]}")
    return hubert_loss(
        projected,
        model.label_embeddings,
        batch.targets.to(device),
        batch.masked.to(device),
        batch.valid.to(device),
        cfg.loss,
    )


@torch.inference_mode()
def evaluate(model, cfg: PretrainConfig, data: DataDir, units, utts: list[str], lengths, device) -> dict[str, float]:
    """Dev loss and masked-frame accuracy, with the same masks every time (a fixed seed) so epochs compare."""
    model.eval()
    rng = np.random.default_rng([cfg.seed, 7])
    totals = {"loss": 0.0, "acc_masked": 0.0, "acc_unmasked": 0.0, "n_masked": 0.0, "n_unmasked": 0.0}
    budget = int(cfg.batching.max_batch_seconds * cfg.frame_rate)
    for indices in make_batches(lengths, budget, 0, 0, shuffle=False):
        batch = make_batch(cfg, data, units, [utts[i] for i in indices], rng, random_crop=False)
        loss, stats = batch_loss(model, batch, cfg, device)
        totals["loss"] += loss.item() * stats["n_masked"]
        for kind in ("masked", "unmasked"):
            totals[f"acc_{kind}"] += stats.get(f"acc_{kind}", 0.0) * stats[f"n_{kind}"]
            totals[f"n_{kind}"] += stats[f"n_{kind}"]
    model.train()
    n_masked, n_unmasked = max(1.0, totals["n_masked"]), max(1.0, totals["n_unmasked"])
    return {
        "dev_loss": totals["loss"] / n_masked,
        "dev_acc": totals["acc_masked"] / n_masked,
        "dev_acc_unmasked": totals["acc_unmasked"] / n_unmasked,
    }


# ---- outputs ----


def save_encoder(model: HubertPretrainModel, cfg: PretrainConfig, folder: Path) -> None:
    """The encoder and its preprocessor config, written to <folder>.tmp and renamed: never half-written."""
    from transformers import Wav2Vec2FeatureExtractor

    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.hubert.save_pretrained(tmp)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=cfg.model.normalize_audio,
        # Group-normalised conv stacks (HuBERT Base) are run on zero-padded batches without a mask, as on the hub.
        return_attention_mask=cfg.model.feat_extract_norm == "layer",
    ).save_pretrained(tmp)
    save_config(cfg, tmp / "pretrain_config.yaml")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


# ---- training ----


def pretrain(
    cfg: PretrainConfig,
    paths: Paths,
    device: torch.device,
    prepare_targets: TargetPreparer,
    stop_after_steps: int | None = None,
) -> dict[str, float]:
    """Train (or resume) into paths.out; `prepare_targets` gives the frame targets (see the module docstring)."""
    with run_dir.claimed(paths.out):
        return _pretrain(cfg, paths, device, prepare_targets, stop_after_steps)


def _pretrain(
    cfg: PretrainConfig,
    paths: Paths,
    device: torch.device,
    prepare_targets: TargetPreparer,
    stop_after_steps: int | None,
) -> dict[str, float]:
    saved = paths.out / "config.yaml"
    started = any((paths.out / name).exists() for name in ("checkpoints", "targets", "model"))
    data = {"the training set": paths.train, "the dev set": paths.valid}
    run_dir.check_resume(paths.out, to_dict(cfg), data, started)
    if (paths.out / "model" / "config.json").is_file():
        print(f"{paths.out}: pretraining is complete (model in {paths.out / 'model'}); nothing to do")
        return {"steps": -1, "elapsed_s": 0.0, "complete": 1.0}
    train_data, valid_data = open_data_dir(paths.train), open_data_dir(paths.valid)
    setup_logging(paths.out, True)
    save_config(cfg, saved)
    began = time.time()
    train_units, dev_units = prepare_targets(cfg, paths, train_data, valid_data)
    log.info(f"targets ready ({time.time() - began:.0f} s): {paths.out / 'targets'}")

    frame_rate = cfg.frame_rate
    train_utts = train_data.utt_ids
    seconds = train_data.durations()
    lengths = [max(1, round(min(seconds[u], cfg.batching.max_seconds) * frame_rate)) for u in train_utts]
    dev_utts = valid_data.utt_ids[: cfg.dev.max_utts] if cfg.dev.max_utts else valid_data.utt_ids
    dev_seconds = valid_data.durations()
    dev_lengths = [max(1, round(min(dev_seconds[u], cfg.batching.max_seconds) * frame_rate)) for u in dev_utts]
    budget = int(cfg.batching.max_batch_seconds * frame_rate)

    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))
    torch.manual_seed(cfg.seed)
    model = HubertPretrainModel(cfg.model, cfg.loss, cfg.targets.num_units).to(device)
    optimizer = make_optimizer(model, cfg)
    batches_per_epoch = len(make_batches(lengths, budget, cfg.seed, 0))
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
    progress = {"epoch": 0, "batch": 0, "step": 0, "history": []}
    state = load_latest(ckpt_dir)
    if state is not None:
        progress = restore(
            state, {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}, ckpt_dir
        )
        log.info(
            f"resumed from {ckpt_dir} at step {progress['step']} "
            f"(epoch {progress['epoch'] + 1}, batch {progress['batch']})"
        )

    def checkpoint() -> None:
        snapshot = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rng_state(),
            "progress": progress,
        }
        save_checkpoint(ckpt_dir, progress["step"], snapshot, cfg.keep_last)

    log.info(
        f"{len(train_utts)} training utterances ({sum(seconds.values()) / 3600:.2f} h), {batches_per_epoch} batches "
        f"per epoch, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {total_steps} optimizer steps"
    )
    model.train()
    start = time.time()
    first_step = progress["step"]
    done = stopped = False
    for epoch in range(progress["epoch"], cfg.epochs):
        if cfg.max_steps and progress["step"] >= cfg.max_steps:
            break  # killed after the last checkpoint but before the model was saved
        batches = make_batches(lengths, budget, cfg.seed, epoch)
        first = progress["batch"] if epoch == progress["epoch"] else 0
        running: dict[str, float] = {"loss": 0.0, "acc": 0.0, "n": 0}
        bar = tqdm(
            total=len(batches),
            initial=first,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            mininterval=PROGRESS_INTERVAL_S,
        )
        for index in range(first, len(batches)):
            # Everything random in a batch (crops, masks, dropout) depends only on (seed, epoch, batch): resume-exact.
            torch.manual_seed(step_seed(cfg.seed, epoch * 1_000_000 + index))
            rng = np.random.default_rng([cfg.seed, epoch, index])
            batch = make_batch(cfg, train_data, train_units, [train_utts[i] for i in batches[index]], rng, True)
            loss, stats = batch_loss(model, batch, cfg, device)
            value = loss.item()
            if not math.isfinite(value):
                raise non_finite_loss(
                    value, progress["step"] + 1, epoch, index, [train_utts[i] for i in batches[index]]
                )
            scaler.scale(loss / cfg.optim.grad_accum).backward()
            running["loss"] += value
            running["acc"] += stats.get("acc_masked", 0.0)
            running["n"] += 1
            bar.update(1)
            boundary = (index + 1) % cfg.optim.grad_accum == 0 or index + 1 == len(batches)
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
            mean_loss, mean_acc = running["loss"] / running["n"], running["acc"] / running["n"]
            bar.set_postfix(
                loss=f"{mean_loss:.3f}", acc=f"{mean_acc:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False
            )
            if progress["step"] % cfg.log_every_steps == 0:
                elapsed = time.time() - start
                per_step = elapsed / max(1, progress["step"] - first_step)
                log.info(
                    f"epoch {epoch + 1} step {progress['step']}: loss {mean_loss:.4f} acc_masked {mean_acc:.4f} "
                    f"lr {scheduler.get_last_lr()[0]:.2e} ({per_step:.2f} s/step)"
                )
                append_curve(
                    paths.out,
                    CURVE_COLUMNS,
                    epoch=epoch + 1,
                    step=progress["step"],
                    train_loss=mean_loss,
                    train_acc=mean_acc,
                    lr=scheduler.get_last_lr()[0],
                    elapsed_s=elapsed,
                )
                running = {"loss": 0.0, "acc": 0.0, "n": 0}
            if progress["step"] % cfg.checkpoint_every_steps == 0:
                checkpoint()
            if cfg.max_steps and progress["step"] >= cfg.max_steps:
                done = True
                break
            if stop_after_steps is not None and progress["step"] - first_step >= stop_after_steps:
                stopped = True
                break
        bar.close()
        if stopped:
            checkpoint()
            log.info(f"stopped after {progress['step'] - first_step} steps at step {progress['step']}; rerun to go on")
            return {"steps": progress["step"], "elapsed_s": time.time() - start, "complete": 0.0}
        metrics = evaluate(model, cfg, valid_data, dev_units, dev_utts, dev_lengths, device)
        progress["history"].append({"epoch": epoch + 1, "step": progress["step"], **metrics})
        log.info(f"epoch {epoch + 1} done: " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        append_curve(
            paths.out,
            CURVE_COLUMNS,
            epoch=epoch + 1,
            step=progress["step"],
            dev_loss=metrics["dev_loss"],
            dev_acc=metrics["dev_acc"],
            elapsed_s=time.time() - start,
        )
        if not done or progress["batch"] >= len(batches):
            progress["epoch"], progress["batch"] = epoch + 1, 0
        checkpoint()
        if done:
            break
    save_encoder(model, cfg, paths.out / "model")
    log.info(f"saved the encoder to {paths.out / 'model'}")
    return {"steps": progress["step"], "elapsed_s": time.time() - start, "complete": 1.0}
