"""Train a small EnCodec-architecture neural codec (transformers `EncodecModel`) on a Kaldi data dir.

The embedded corpus needs a codec whose codes carry speech (a randomly initialised EnCodec's do not), and the
published ones are 24 kHz models trained on far more data than a CPU recipe can use. This trains the same
architecture (SEANet encoder/decoder + residual vector quantiser), small, and saves it with `save_pretrained`, so
the `encodec` discretizer loads it exactly like `facebook/encodec_24khz`.

Losses (weights configurable, defaults after EnCodec: lambda_t 0.1, lambda_f 1, lambda_w 1):
- time: L1 between the input crop and its reconstruction;
- mel: multi-scale mel-spectrogram L1, for every STFT size in `loss.mel_scales` (hop = size / 4) the mean L1 of the
  mel magnitudes plus the mean L1 of their logs (our choice: EnCodec adds an L2 term on linear mels; the log term
  weighs quiet speech more, which matters more for units than loudness), averaged over the scales;
- commitment: mean over the codebooks used of || r_c - sg(q_c) ||^2 (r_c the residual entering codebook c, q_c its
  codeword), which keeps the encoder output near the codebooks.
No adversarial discriminator (EnCodec's MS-STFT discriminator, feature matching): it roughly triples the cost of a
step and mainly buys perceptual sharpness, which the units do not need; on a 2-core CPU budget it is left out.

Quantiser learning: the transformers module only quantises (its codebook buffers `embed`, `cluster_size`,
`embed_avg` are never updated; a fresh model has all-zero codebooks). So training does it here, as EnCodec does:
- codebook c is initialised from random residual vectors of the first batch;
- exponential moving averages (decay `quantizer.ema_decay`) of the code counts (`cluster_size`) and of the sum of
  the vectors assigned to each code (`embed_avg`), with Laplace smoothing; embed = embed_avg / smoothed count;
- dead codes (EMA count below `quantizer.dead_code_threshold`) are replaced by random residual vectors of the
  batch, and their statistics reset so that the replacement is not overwritten by the next average (the original
  code overwrites it);
- gradients pass the quantiser straight through to the encoder;
- quantiser dropout: every step uses the codebooks of a bandwidth drawn uniformly from `target_bandwidths`, so the
  first codebooks alone also reconstruct (the lower bandwidths work).
The EMA statistics live in the model's own buffers, so checkpoints and the saved model carry them.

Training: random crops of `crop_seconds` (zero-padded when an utterance is shorter) from random training utterances,
AdamW, the shared warmup/decay schedule, optional bf16 autocast. Every step's randomness (crops, bandwidth, codebook
initialisation and replacement) is seeded from (seed, step), and checkpoints (toolkit.train.checkpoint) hold the
model with its codebook statistics, the optimizer, the scheduler and the step: a run killed at any moment (kill -9)
and restarted ends with the same weights as one never interrupted. Dev evaluation: the inference path
(`model.encode` / `model.decode`) on whole dev utterances at every bandwidth, reporting SNR (dB) and mel L1.

Outputs in the run folder: config.yaml (resolved), train.log, curves.csv, checkpoints/, dev_eval.json (every
evaluation), model/ (save_pretrained, written atomically at the end) and done.json (written last).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from tqdm import tqdm

from toolkit.audio import load_audio, resample
from toolkit.config import load_yaml, save_config, to_dict
from toolkit.datadir import DataDir, load_data_dir
from toolkit.fileio import atomic_write
from toolkit.train.checkpoint import list_checkpoints, load_latest, rng_state, save_checkpoint, set_rng_state
from toolkit.train.schedule import lr_multiplier

log = logging.getLogger("toolkit.codec")
PROGRESS_INTERVAL_S = 0.5 if sys.stderr.isatty() or os.environ.get("TOOLKIT_INTERACTIVE") == "1" else 30.0
CURVE_COLUMNS = ("step", "loss", "time_l1", "mel", "commitment", "codebooks", "active_codes", "lr", "elapsed_s")


@dataclass
class CodecModelConfig:
    """The EncodecConfig options we set (the rest keep transformers' defaults)."""

    sampling_rate: int = 16000
    num_filters: int = 16
    num_residual_layers: int = 1
    upsampling_ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])  # hop 320: 50 Hz at 16 kHz
    hidden_size: int = 64  # dimension of the codes' vectors
    codebook_size: int = 1024
    # kbps; each gives floor(kbps * 1000 / (frame_rate * log2(codebook_size))) codebooks: 0.5 -> 1 ... 4 -> 8
    target_bandwidths: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0])
    num_lstm_layers: int = 1
    use_causal_conv: bool = True  # causal: batched encoding is exactly equal to one-at-a-time (see the discretizer)
    compress: int = 2
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_growth_rate: int = 2

    def __post_init__(self):
        for name in ("sampling_rate", "num_filters", "hidden_size", "num_lstm_layers", "compress"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if not self.upsampling_ratios or any(not isinstance(r, int) or r < 1 for r in self.upsampling_ratios):
            raise ValueError(
                f"model.upsampling_ratios must be a list of positive integers, got {self.upsampling_ratios}"
            )
        if self.codebook_size < 2 or self.codebook_size & (self.codebook_size - 1):
            raise ValueError(f"model.codebook_size must be a power of 2, got {self.codebook_size}")
        if not self.target_bandwidths or sorted(self.target_bandwidths) != list(self.target_bandwidths):
            raise ValueError(f"model.target_bandwidths must be an increasing list, got {self.target_bandwidths}")
        self.target_bandwidths = [float(b) for b in self.target_bandwidths]
        per_codebook = self.frame_rate * math.log2(self.codebook_size) / 1000
        if self.target_bandwidths[0] < per_codebook * (1 - 1e-9):
            raise ValueError(
                f"model.target_bandwidths: {self.target_bandwidths[0]:g} kbps is below one codebook "
                f"({per_codebook:g} kbps at {self.frame_rate} frames/s and {self.codebook_size} codes)"
            )

    @property
    def hop_length(self) -> int:
        return int(np.prod(self.upsampling_ratios))

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sampling_rate / self.hop_length)  # transformers' rule


@dataclass
class QuantizerConfig:
    # EnCodec uses 0.99 with batches of ~5000 frames; a CPU batch of ~400 frames and a short run need a shorter
    # memory, or the codebooks lag behind an encoder that is still moving fast.
    ema_decay: float = 0.95
    epsilon: float = 1e-5  # Laplace smoothing of the code counts
    # EMA count (uses per step) below which a code is replaced; 0 disables. EnCodec's 2 assumes many frames per code
    # per step; with 400 frames and 1024 codes the mean is 0.4, so the default is relative to that scale.
    dead_code_threshold: float = 0.03
    reset_count: float = 1.0  # the EMA count given to a new or replaced code: its grace period before replacement
    dropout: bool = True  # a random bandwidth per step (else always the highest)

    def __post_init__(self):
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"quantizer.ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.epsilon <= 0 or self.dead_code_threshold < 0 or self.reset_count <= self.dead_code_threshold:
            raise ValueError(
                "quantizer.epsilon must be positive, quantizer.dead_code_threshold >= 0 and "
                "quantizer.reset_count above dead_code_threshold"
            )


@dataclass
class LossConfig:
    time_weight: float = 0.1
    mel_weight: float = 1.0
    commitment_weight: float = 1.0
    mel_scales: list[int] = field(default_factory=lambda: [256, 512, 1024])  # STFT sizes (hop: size / 4)
    n_mels: int = 64

    def __post_init__(self):
        if min(self.time_weight, self.mel_weight, self.commitment_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if not self.mel_scales or any(not isinstance(s, int) or s < 16 for s in self.mel_scales):
            raise ValueError(f"loss.mel_scales must be a list of STFT sizes >= 16, got {self.mel_scales}")
        if self.n_mels < 1:
            raise ValueError(f"loss.n_mels must be >= 1, got {self.n_mels}")


@dataclass
class CodecOptimConfig:
    lr: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])  # EnCodec's
    weight_decay: float = 0.0
    warmup_steps: int = 50
    schedule: str = "cosine"  # constant, linear or cosine (toolkit.train.schedule)
    final_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # 0: none

    def __post_init__(self):
        if self.lr <= 0 or len(self.betas) != 2:
            raise ValueError("optim.lr must be positive and optim.betas two numbers")
        if self.schedule not in ("constant", "linear", "cosine"):
            raise ValueError(f"optim.schedule must be constant, linear or cosine, got {self.schedule!r}")


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
    precision: str = "fp32"  # fp32 or bf16 (autocast)
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
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")

    @property
    def crop_samples(self) -> int:
        hop = self.model.hop_length
        return max(1, round(self.crop_seconds * self.model.sampling_rate / hop)) * hop


# ---- model ----


def build_codec(cfg: CodecModelConfig):
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig(
        sampling_rate=cfg.sampling_rate,
        num_filters=cfg.num_filters,
        num_residual_layers=cfg.num_residual_layers,
        upsampling_ratios=list(cfg.upsampling_ratios),
        hidden_size=cfg.hidden_size,
        codebook_size=cfg.codebook_size,
        target_bandwidths=[float(b) for b in cfg.target_bandwidths],  # strict config: floats only
        num_lstm_layers=cfg.num_lstm_layers,
        use_causal_conv=cfg.use_causal_conv,
        compress=cfg.compress,
        kernel_size=cfg.kernel_size,
        last_kernel_size=cfg.last_kernel_size,
        residual_kernel_size=cfg.residual_kernel_size,
        dilation_growth_rate=cfg.dilation_growth_rate,
        chunk_length_s=None,
        normalize=False,
    )
    return EncodecModel(config)


def codebook_counts(model) -> list[int]:
    """Codebooks used at each target bandwidth (the model's own rule)."""
    return [int(model.quantizer.get_num_quantizers_for_bandwidth(b)) for b in model.config.target_bandwidths]


# ---- losses ----


class MelLoss(torch.nn.Module):
    """Multi-scale mel L1: per STFT size, mean |M(x) - M(y)| + mean |log M(x) - log M(y)|; averaged over sizes."""

    def __init__(self, sample_rate: int, scales: list[int], n_mels: int, floor: float = 1e-5):
        super().__init__()
        self.floor = floor
        self.mels = torch.nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate,
                n_fft=size,
                win_length=size,
                hop_length=size // 4,
                # A small STFT has few frequency bins: fewer mel bands than bins/2 avoids empty filters.
                n_mels=min(n_mels, size // 8),
                power=1.0,
                center=True,
            )
            for size in scales
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for mel in self.mels:
            mx, my = mel(x.float()), mel(y.float())
            total = total + (mx - my).abs().mean()
            total = total + (mx.clamp_min(self.floor).log() - my.clamp_min(self.floor).log()).abs().mean()
        return total / len(self.mels)


def commitment_loss(residuals: list[torch.Tensor], codewords: list[torch.Tensor]) -> torch.Tensor:
    """Mean over codebooks of mean((r_c - sg(q_c))^2)."""
    losses = [F.mse_loss(r, q.detach()) for r, q in zip(residuals, codewords, strict=True)]
    return torch.stack(losses).mean()


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    noise = (reference - estimate).pow(2).sum().item()
    signal = reference.pow(2).sum().item()
    return 10 * math.log10(max(signal, 1e-12) / max(noise, 1e-12))


# ---- quantiser with codebook learning ----


def _nearest(vectors: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
    distances = vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ embed.t() + embed.pow(2).sum(1)[None]
    return distances.argmin(1)


def _random_rows(vectors: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    index = torch.randint(0, vectors.shape[0], (count,), generator=generator)
    return vectors[index]


@torch.no_grad()
def ema_update(codebook, vectors: torch.Tensor, codes: torch.Tensor, qcfg: QuantizerConfig, generator) -> int:
    """One EMA step of a transformers EncodecEuclideanCodebook's buffers; returns the number of codes replaced."""
    size = codebook.embed.shape[0]
    onehot = F.one_hot(codes, size).to(vectors.dtype)
    decay = qcfg.ema_decay
    codebook.cluster_size.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
    codebook.embed_avg.mul_(decay).add_(onehot.t() @ vectors, alpha=1 - decay)
    n = codebook.cluster_size.sum()
    smoothed = (codebook.cluster_size + qcfg.epsilon) / (n + size * qcfg.epsilon) * n
    codebook.embed.copy_(codebook.embed_avg / smoothed[:, None])
    dead = codebook.cluster_size < qcfg.dead_code_threshold
    count = int(dead.sum())
    if count:
        fresh = _random_rows(vectors, count, generator)
        codebook.embed[dead] = fresh
        codebook.cluster_size[dead] = qcfg.reset_count
        codebook.embed_avg[dead] = fresh * qcfg.reset_count
    return count


@torch.no_grad()
def init_codebook(codebook, vectors: torch.Tensor, qcfg: QuantizerConfig, generator) -> None:
    fresh = _random_rows(vectors, codebook.embed.shape[0], generator)
    codebook.embed.copy_(fresh)
    codebook.embed_avg.copy_(fresh * qcfg.reset_count)
    codebook.cluster_size.fill_(qcfg.reset_count)


def quantize(
    model, embeddings: torch.Tensor, num_codebooks: int, qcfg: QuantizerConfig, train: bool, generator=None, init=False
):
    """Residual VQ of encoder output [B, D, T] with the first `num_codebooks` codebooks.

    Returns (straight-through quantised [B, D, T], commitment loss, codes [num_codebooks, B, T], replaced codes).
    With train=True the codebooks take an EMA step (init=True first fills them from the batch).
    """
    batch, dim, frames = embeddings.shape
    residual = embeddings.permute(0, 2, 1).reshape(-1, dim).float()
    out = torch.zeros_like(residual)
    residuals, codewords, all_codes = [], [], []
    replaced = 0
    for layer in model.quantizer.layers[:num_codebooks]:
        codebook = layer.codebook
        if init:
            init_codebook(codebook, residual.detach(), qcfg, generator)
        codes = _nearest(residual.detach(), codebook.embed)
        codeword = codebook.embed[codes].clone()
        residuals.append(residual)
        codewords.append(codeword)
        out = out + residual + (codeword - residual).detach()  # straight-through
        if train:
            replaced += ema_update(codebook, residual.detach(), codes, qcfg, generator)
        residual = residual - codeword.detach()
        all_codes.append(codes.view(batch, frames))
    quantized = out.view(batch, frames, dim).permute(0, 2, 1)
    return quantized, commitment_loss(residuals, codewords), torch.stack(all_codes), replaced


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


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % (2**63 - 1)


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


# ---- evaluation ----


@torch.inference_mode()
def evaluate(model, utts: Utterances, cfg: CodecTrainConfig, mel_loss: MelLoss) -> dict[str, dict[str, float]]:
    """SNR (dB) and mel L1 of encode -> decode through the inference path, per bandwidth, on dev utterances."""
    was_training = model.training
    model.eval()
    hop = cfg.model.hop_length
    count = len(utts.ids) if cfg.dev_max_utts == 0 else min(cfg.dev_max_utts, len(utts.ids))
    waves = [torch.from_numpy(read_utterance(utts, i, cfg.model.sampling_rate)) for i in range(count)]
    result = {}
    for bandwidth in model.config.target_bandwidths:
        snrs, mels = [], []
        for wave in waves:
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


def setup_logging(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(out / "train.log"), logging.StreamHandler()]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", handlers=handlers, force=True)


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


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


def train_codec(cfg: CodecTrainConfig, paths: CodecPaths, stop_after: int | None = None) -> dict:
    """Train (or resume, or report a finished run). `stop_after` ends the run after that step with a checkpoint,
    as a kill would (tests use it)."""
    out = paths.out
    saved = out / "config.yaml"
    done_file = out / "done.json"
    if (
        saved.exists()
        and load_yaml(saved) != to_dict(cfg)
        and (list_checkpoints(out / "checkpoints") or done_file.exists())
    ):
        raise ValueError(
            f"{out} holds a run of a different configuration ({saved}); "
            "resume with the same config, or train into a new directory"
        )
    if done_file.exists() and (out / "model" / "config.json").exists():
        result = json.loads(done_file.read_text())
        result["already_complete"] = True
        return result
    train_utts = load_utterances(paths.train)
    valid_utts = load_utterances(paths.valid)
    setup_logging(out)
    save_config(cfg, saved)

    torch.manual_seed(cfg.seed)
    model = build_codec(cfg.model)
    model.train()
    counts = codebook_counts(model)
    mel_loss = MelLoss(cfg.model.sampling_rate, cfg.loss.mel_scales, cfg.loss.n_mels)
    o = cfg.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_multiplier(s, cfg.steps, o.warmup_steps, o.schedule, o.final_lr_ratio)
    )
    ckpt_dir = out / "checkpoints"
    progress = {"step": 0, "history": []}
    state = load_latest(ckpt_dir)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        progress = state["progress"]
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
        x = training_batch(train_utts, cfg, step)
        pick = int(torch.randint(0, len(counts), (1,), generator=generator)) if cfg.quantizer.dropout else -1
        num_codebooks = counts[pick]
        # The very first step fills every codebook (also those the drawn bandwidth does not use) from the batch.
        with _autocast(cfg.precision):
            embeddings = model.encoder(x)
        if step == 0:
            quantize(model, embeddings.detach(), counts[-1], cfg.quantizer, False, generator, init=True)
        quantized, commit, codes, replaced = quantize(model, embeddings, num_codebooks, cfg.quantizer, True, generator)
        with _autocast(cfg.precision):
            y = model.decoder(quantized)[..., : x.shape[-1]].float()
        time_l1 = (x - y).abs().mean()
        mel = mel_loss(x, y)
        loss = cfg.loss.time_weight * time_l1 + cfg.loss.mel_weight * mel + cfg.loss.commitment_weight * commit
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step + 1}: the loss is {loss.item()}; lower optim.lr")
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
        bar.set_postfix(loss=f"{values['loss']:.3f}", mel=f"{values['mel']:.3f}")
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
