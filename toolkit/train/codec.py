"""Train a small EnCodec-architecture neural codec (transformers `EncodecModel`) on a Kaldi data dir.

The embedded corpus needs a codec whose codes carry speech (a randomly initialised EnCodec's do not), and the
published ones are 24 kHz models trained on far more data than a CPU recipe can use. This trains the same
architecture (SEANet encoder/decoder + residual vector quantiser), small, and saves it with `save_pretrained`, so
the `encodec` discretizer loads it exactly like `facebook/encodec_24khz`.

Here: the training configuration, the data, the dev evaluation and the training loop. The rest lives in its own
module: the model config and constructor in toolkit/models/codec.py; the quantiser with its codebook learning (EMA
codebooks, dead-code replacement, straight-through gradients) in toolkit/models/codec_quantizer.py; the losses
(time L1, multi-scale mel L1, commitment; no adversarial discriminator) and `LossConfig` in toolkit/losses/codec.py.
Quantiser dropout is drawn here: every step uses the codebooks of a bandwidth drawn uniformly from
`target_bandwidths`.

Training: random crops of `crop_seconds` (zero-padded when an utterance is shorter) from random training utterances,
each scaled to unit RMS when `model.normalize` is on (as `EncodecModel.encode` then scales its input), AdamW, the
shared warmup/decay schedule, optional bf16 autocast. The convolutions start from `init_for_training` (weights that
keep a signal's scale; with PyTorch's default ones the encoder output ignored its input and training stalled).
Every step's randomness (crops, bandwidth, codebook initialisation and replacement) is seeded from (seed, step), and
checkpoints (toolkit.train.checkpoint) hold the model with its codebook statistics, the optimizer, the scheduler and
the step: a run killed at any moment (kill -9) and restarted ends with the same weights as one never interrupted. Dev
evaluation: the inference path (`model.encode` / `model.decode`) on whole dev utterances at every bandwidth,
reporting SNR (dB) and mel L1.

Outputs in the run folder: config.yaml (resolved), train.log, curves.csv, checkpoints/, dev_eval.json (every
evaluation), model/ (save_pretrained, written atomically at the end) and done.json (written last).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from toolkit.audio import load_audio, resample
from toolkit.config import save_config, to_dict
from toolkit.datadir import DataDir, load_data_dir
from toolkit.fileio import atomic_write
from toolkit.hardware import autocast, check_precision, resolve_precision
from toolkit.losses.codec import LossConfig, MelLoss, snr_db
from toolkit.models.codec import CodecModelConfig, build_codec, codebook_counts, init_for_training
from toolkit.models.codec_quantizer import QuantizerConfig, quantize
from toolkit.train import run_dir
from toolkit.train.checkpoint import list_checkpoints, load_latest, restore, rng_state, save_checkpoint
from toolkit.train.engine import PROGRESS_INTERVAL_S, OptimConfig, setup_logging, step_seed
from toolkit.train.numerics import non_finite_loss
from toolkit.train.schedule import lr_multiplier

log = logging.getLogger("toolkit.codec")
CURVE_COLUMNS = ("step", "loss", "time_l1", "mel", "commitment", "codebooks", "active_codes", "lr", "elapsed_s")


@dataclass
class CodecOptimConfig(OptimConfig):
    """toolkit.train.engine.OptimConfig with the codec's defaults (no accumulation: grad_accum stays 1)."""

    lr: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])  # EnCodec's
    warmup_steps: int = 50
    final_lr_ratio: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        if self.grad_accum != 1:
            raise ValueError("optim.grad_accum: the codec trainer does not accumulate batches; leave it at 1")


@dataclass
class CodecTrainConfig:
    model: CodecModelConfig = field(default_factory=CodecModelConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: CodecOptimConfig = field(default_factory=CodecOptimConfig)
    steps: int = 1000  # optimizer steps
    batch_size: int = 8  # crops per step
    crop_seconds: float = 1.0  # rounded to whole frames
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 (autocast); auto: toolkit.hardware picks for this host
    log_every_steps: int = 10
    checkpoint_every_steps: int = 50
    keep_last: int = 2
    eval_every_steps: int = 0  # 0: only at the end
    dev_max_utts: int = 50  # dev utterances evaluated (the first ones); 0: all

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every_steps", "checkpoint_every_steps", "keep_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every_steps < 0 or self.dev_max_utts < 0:
            raise ValueError("eval_every_steps and dev_max_utts must be >= 0")
        if self.crop_seconds * self.model.sampling_rate < self.model.hop_length:
            raise ValueError(f"crop_seconds={self.crop_seconds} is shorter than one frame")
        check_precision(self.precision, ("auto", "fp32", "bf16"))

    @property
    def crop_samples(self) -> int:
        hop = self.model.hop_length
        return max(1, round(self.crop_seconds * self.model.sampling_rate / hop)) * hop


# ---- data ----


@dataclass
class Utterances:
    data: DataDir
    ids: list[str]
    durations: list[float]


def load_utterances(path: str | Path) -> Utterances:
    from toolkit.audio import audio_info

    data = load_data_dir(path)
    if "wav.scp" not in data.tables:
        raise FileNotFoundError(f"{path}: no wav.scp")
    ids = list(data.utt_ids)
    if not ids:
        raise ValueError(f"{path}: the data dir holds no utterances")
    known = data["utt2dur"] if data.has("utt2dur") else {}
    durations = []
    for utt in ids:
        if utt in known:
            durations.append(float(known[utt]))
        else:
            start, end = data.segment_of(utt)
            if end is not None and end > 0:
                durations.append(end - (start or 0.0))
            else:
                durations.append(audio_info(data["wav.scp"][data.recording_of(utt)], uttid=utt).duration)
    return Utterances(data, ids, durations)


def read_utterance(utts: Utterances, index: int, sample_rate: int, start_s: float = 0.0, seconds=None):
    utt = utts.ids[index]
    seg_start, seg_end = utts.data.segment_of(utt)
    begin = (seg_start or 0.0) + start_s
    end = seg_end if seconds is None else begin + seconds
    if seg_end is not None and end is not None:
        end = min(end, seg_end)
    wave, sr = load_audio(utts.data["wav.scp"][utts.data.recording_of(utt)], uttid=utt, start=begin, end=end)
    return resample(wave, sr, sample_rate)


def training_batch(utts: Utterances, cfg: CodecTrainConfig, step: int) -> torch.Tensor:
    """[batch, 1, crop] random crops of random utterances, a pure function of (seed, step)."""
    rng = np.random.default_rng([cfg.seed, step])
    sr, crop = cfg.model.sampling_rate, cfg.crop_samples
    out = torch.zeros(cfg.batch_size, 1, crop)
    for row, index in enumerate(rng.integers(0, len(utts.ids), cfg.batch_size)):
        spare = max(0.0, utts.durations[index] - crop / sr)
        start = float(rng.uniform(0.0, spare)) if spare > 0 else 0.0
        wave = read_utterance(utts, int(index), sr, start, crop / sr + 0.01)[:crop]
        out[row, 0, : len(wave)] = torch.from_numpy(wave)
    return out


def normalize_rms(x: torch.Tensor) -> torch.Tensor:
    """Each crop [B, 1, T] divided by its RMS, as `EncodecModel.encode` does with `normalize`: the model is trained
    on what it will see."""
    return x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8)


# ---- evaluation ----


@torch.inference_mode()
def evaluate(model, utts: Utterances, cfg: CodecTrainConfig, mel_loss: MelLoss) -> dict[str, dict[str, float]]:
    """SNR (dB) and mel L1 of encode -> decode through the inference path, per bandwidth, on dev utterances."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    hop = cfg.model.hop_length
    count = len(utts.ids) if cfg.dev_max_utts == 0 else min(cfg.dev_max_utts, len(utts.ids))
    waves = [torch.from_numpy(read_utterance(utts, i, cfg.model.sampling_rate)) for i in range(count)]
    result = {}
    for bandwidth in model.config.target_bandwidths:
        snrs, mels = [], []
        for wave in waves:
            wave = wave.to(device)
            x = F.pad(wave, (0, math.ceil(len(wave) / hop) * hop - len(wave)))[None, None]
            encoded = model.encode(x, bandwidth=float(bandwidth), return_dict=True)
            y = model.decode(encoded.audio_codes, encoded.audio_scales, return_dict=True).audio_values
            y = y[..., : len(wave)]
            snrs.append(snr_db(wave, y[0, 0]))
            mels.append(mel_loss(wave[None, None], y).item())
        result[f"{float(bandwidth):g}kbps"] = {
            "codebooks": int(model.quantizer.get_num_quantizers_for_bandwidth(bandwidth)),
            "snr_db": float(np.mean(snrs)),
            "mel_l1": float(np.mean(mels)),
        }
    model.train(was_training)
    return result


# ---- training ----


@dataclass
class CodecPaths:
    train: Path
    valid: Path
    out: Path


def _trim_curves(path: Path, step: int) -> None:
    """After a resume, drop the rows logged after the checkpoint (they are about to be trained again)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with atomic_write(path) as f:
        csv.writer(f).writerows(kept)


def _save_model(model, folder: Path) -> None:
    """save_pretrained into a temporary folder, renamed over `folder` when complete."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def train_codec(
    cfg: CodecTrainConfig, paths: CodecPaths, stop_after: int | None = None, device: str | torch.device = "cpu"
) -> dict:
    """Train (or resume, or report a finished run) on `device`. `stop_after` ends the run after that step with a
    checkpoint, as a kill would (tests use it)."""
    with run_dir.claimed(paths.out):
        return _train_codec(cfg, paths, stop_after, torch.device(device))


def _train_codec(cfg: CodecTrainConfig, paths: CodecPaths, stop_after: int | None, device: torch.device) -> dict:
    out = paths.out
    saved = out / "config.yaml"
    done_file = out / "done.json"
    started = bool(list_checkpoints(out / "checkpoints")) or done_file.exists()
    run_dir.check_resume(out, to_dict(cfg), {"the training set": paths.train, "the dev set": paths.valid}, started)
    if done_file.exists() and (out / "model" / "config.json").exists():
        result = json.loads(done_file.read_text())
        result["already_complete"] = True
        return result
    train_utts = load_utterances(paths.train)
    valid_utts = load_utterances(paths.valid)
    setup_logging(out)
    save_config(cfg, saved)
    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device, ("fp32", "bf16")))

    torch.manual_seed(cfg.seed)
    model = build_codec(cfg.model)
    init_for_training(model)  # on the CPU, so that a seed gives the same initial weights on every device
    model.to(device).train()
    counts = codebook_counts(model)
    mel_loss = MelLoss(cfg.model.sampling_rate, cfg.loss.mel_scales, cfg.loss.n_mels).to(device)
    o = cfg.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_multiplier(s, cfg.steps, o.warmup_steps, o.schedule, o.final_lr_ratio)
    )
    ckpt_dir = out / "checkpoints"
    progress = {"step": 0, "history": []}
    state = load_latest(ckpt_dir)
    if state is not None:
        progress = restore(state, {"model": model, "optimizer": optimizer, "scheduler": scheduler}, ckpt_dir)
        _trim_curves(out / "curves.csv", progress["step"])
        log.info(f"resumed from {ckpt_dir} at step {progress['step']}")
    if not (out / "curves.csv").exists():
        with atomic_write(out / "curves.csv") as f:
            csv.writer(f).writerow(CURVE_COLUMNS)

    def checkpoint() -> None:
        snapshot = {
            "model": model.state_dict(),  # with the codebooks' EMA buffers
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "progress": progress,
        }
        save_checkpoint(ckpt_dir, progress["step"], snapshot, cfg.keep_last)

    def dev_eval() -> dict:
        metrics = evaluate(model, valid_utts, cfg, mel_loss)
        entry = {"step": progress["step"], **metrics}
        progress["history"].append(entry)
        with atomic_write(out / "dev_eval.json") as f:
            json.dump(progress["history"], f, indent=1)
        summary = "; ".join(
            f"{k} ({v['codebooks']} cb): SNR {v['snr_db']:.2f} dB, mel {v['mel_l1']:.3f}" for k, v in metrics.items()
        )
        log.info(f"dev at step {progress['step']}: {summary}")
        return metrics

    params = sum(p.numel() for p in model.parameters())
    log.info(
        f"{len(train_utts.ids)} training utterances, {params / 1e6:.2f}M parameters, {cfg.steps} steps of "
        f"{cfg.batch_size} x {cfg.crop_samples / cfg.model.sampling_rate:g} s; codebooks per bandwidth {counts}"
    )
    start = time.time()
    bar = tqdm(total=cfg.steps, initial=progress["step"], desc="codec", mininterval=PROGRESS_INTERVAL_S)
    running: dict[str, float] = {}
    running_n = 0
    while progress["step"] < cfg.steps:
        step = progress["step"]
        torch.manual_seed(step_seed(cfg.seed, step))
        generator = torch.Generator().manual_seed(step_seed(cfg.seed + 1, step))
        x = training_batch(train_utts, cfg, step).to(device)
        if cfg.model.normalize:
            x = normalize_rms(x)
        pick = int(torch.randint(0, len(counts), (1,), generator=generator)) if cfg.quantizer.dropout else -1
        num_codebooks = counts[pick]
        # The very first step fills every codebook (also those the drawn bandwidth does not use) from the batch.
        with autocast(cfg.precision, device):
            embeddings = model.encoder(x)
        if step == 0:
            quantize(model, embeddings.detach(), counts[-1], cfg.quantizer, False, generator, init=True)
        quantized, commit, codes, replaced = quantize(model, embeddings, num_codebooks, cfg.quantizer, True, generator)
        with autocast(cfg.precision, device):
            y = model.decoder(quantized)[..., : x.shape[-1]].float()
        time_l1 = (x - y).abs().mean()
        mel = mel_loss(x, y)
        loss = cfg.loss.time_weight * time_l1 + cfg.loss.mel_weight * mel + cfg.loss.commitment_weight * commit
        if not torch.isfinite(loss):
            raise non_finite_loss(loss.item(), step + 1, 0, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if o.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        optimizer.step()
        scheduler.step()
        progress["step"] = step + 1
        values = {
            "loss": loss.item(),
            "time_l1": time_l1.item(),
            "mel": mel.item(),
            "commitment": commit.item(),
            "codebooks": num_codebooks,
            "active_codes": int(codes[0].unique().numel()),
        }
        for k, v in values.items():
            running[k] = running.get(k, 0.0) + v
        running_n += 1
        bar.update(1)
        bar.set_postfix(loss=f"{values['loss']:.3f}", mel=f"{values['mel']:.3f}", refresh=False)
        if progress["step"] % cfg.log_every_steps == 0 or progress["step"] == cfg.steps:
            means = {k: v / running_n for k, v in running.items()}
            lr = scheduler.get_last_lr()[0]
            log.info(
                f"step {progress['step']}: loss {means['loss']:.4f} (time L1 {means['time_l1']:.4f}, mel "
                f"{means['mel']:.4f}, commitment {means['commitment']:.4f}, codes used in codebook 0 "
                f"{means['active_codes']:.0f}, replaced {replaced}) lr {lr:.2e}"
            )
            with open(out / "curves.csv", "a", newline="") as f:
                row = {**means, "step": progress["step"], "lr": lr, "elapsed_s": round(time.time() - start, 1)}
                csv.writer(f).writerow([row[c] for c in CURVE_COLUMNS])
            running, running_n = {}, 0
        if cfg.eval_every_steps and progress["step"] % cfg.eval_every_steps == 0 and progress["step"] < cfg.steps:
            dev_eval()
        if progress["step"] % cfg.checkpoint_every_steps == 0 or progress["step"] == cfg.steps:
            checkpoint()
        if stop_after is not None and progress["step"] >= stop_after and progress["step"] < cfg.steps:
            checkpoint()
            bar.close()
            return {"steps": progress["step"], "stopped": True}
    bar.close()
    metrics = dev_eval()
    checkpoint()
    _save_model(model, out / "model")
    result = {"steps": progress["step"], "elapsed_s": round(time.time() - start, 1), "dev": metrics}
    with atomic_write(done_file) as f:
        json.dump(result, f, indent=1)
    return result
