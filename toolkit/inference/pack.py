"""Packed models: one self-contained folder per trained model, with relative paths only, loadable anywhere.
Two kinds: speech-to-text (below) and spoken language understanding (`pack_understand`).

A packed speech-to-text model (stage 10 of the ASR recipe, `python -m toolkit.bin.pack_model`):

    toolkit_model.yaml   what the folder is (kind, format version) and where each part lies, relative to the folder
    README.md            the model card: data, config, scores, the command that made it, how to use it
    lm/                  the speech-text LM (transformers save_pretrained: config.json, model.safetensors)
    tokenizers/          text/ and units/ tokenizers and vocab.json, the vocabulary layout
    discretizer/         the fitted discretizer; its SSL or codec model, when it has a local one, in discretizer/model/
    train_config.yaml    the resolved training config
    decode.yaml          the decoding config the recipe scored with (the default of Speech2Text)

Nothing in it names a path outside it (a hub name for a pretrained SSL/codec model stays a hub name), so the folder
can be copied to another machine or the exp/ tree moved. `toolkit.inference.speech2text.Speech2Text` loads it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from toolkit.config import load_yaml
from toolkit.fileio import atomic_write, replace_dir
from toolkit.train.run_dir import run_tokenizers

MANIFEST = "toolkit_model.yaml"
FORMAT_VERSION = 1
SPEECH2TEXT = "speech2text"
LM_DIR, TOKENIZERS_DIR, DISCRETIZER_DIR = "lm", "tokenizers", "discretizer"
TRAIN_CONFIG, DECODE_CONFIG, CARD = "train_config.yaml", "decode.yaml", "README.md"
# The discretizer's own model, copied into the pack and named relative to the discretizer folder
# (toolkit.discretizers.base.read_config resolves such names).
DISCRETIZER_MODEL = "model"
# What a discretizer folder may hold that inference does not need: the feature cache of the fit, logs.
_DISCRETIZER_SKIP = ("features", "log", "logs")


def read_manifest(folder: str | Path, kind: str) -> dict:
    """The manifest of a packed model of `kind` (its YAML as a dict); a clear error for anything else."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder}: no {MANIFEST}; not a packed model (stage 10 of the ASR recipe writes one to exp/<tag>/model, "
            "or run python -m toolkit.bin.pack_model)"
        )
    values = load_yaml(path)
    if values.get("kind") != kind:
        raise ValueError(f"{path}: a packed '{values.get('kind')}' model, not a '{kind}' model")
    version = values.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: format version {version!r}; this toolkit reads versions up to {FORMAT_VERSION} (update it)"
        )
    return values


def _copy_discretizer(src: Path, dst: Path) -> str:
    """Copy the files of a discretizer folder and, when its config names a local model folder, that folder too
    (as dst/model); returns how the model is referenced in the pack (a hub name stays a hub name)."""
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.is_file():
            shutil.copy2(item, dst / item.name)
        elif item.name not in _DISCRETIZER_SKIP:
            shutil.copytree(item, dst / item.name)
    config = load_yaml(src / "config.yaml")
    model = config.get("model")
    if not isinstance(model, str) or not model:
        return "-"  # MFCC k-means: no model
    local = Path(model) if Path(model).is_absolute() else src / model
    if not local.is_dir():
        local = Path(model).expanduser()
    if not local.is_dir():
        return model  # a hub name: the user's hub or cache provides it
    shutil.rmtree(dst / DISCRETIZER_MODEL, ignore_errors=True)
    shutil.copytree(local, dst / DISCRETIZER_MODEL, ignore=shutil.ignore_patterns("checkpoints", "*.tmp"))
    config["model"] = DISCRETIZER_MODEL
    with atomic_write(dst / "config.yaml") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return f"{DISCRETIZER_DIR}/{DISCRETIZER_MODEL} (copied from {model})"


def pack_speech2text(
    exp_dir: str | Path,
    discretizer_dir: str | Path,
    decode_config: str | Path | None,
    out_dir: str | Path,
    card: dict | None = None,
) -> Path:
    """Pack the run exp_dir (its best model, config and tokenizers) with its discretizer into out_dir.

    Written into `<out_dir>.tmp` and renamed when complete: an interrupted pack never leaves a half model behind, and
    an existing pack is replaced only by a complete one. `card` adds facts to the model card (command, scores, data).
    """
    exp_dir, discretizer_dir, out_dir = Path(exp_dir), Path(discretizer_dir), Path(out_dir)
    for needed, what in (
        (exp_dir / "best", "the best model (stage 7)"),
        (exp_dir / "config.yaml", "the training config"),
        (discretizer_dir / "config.yaml", "the discretizer (stage 4)"),
    ):
        if not needed.exists():
            raise FileNotFoundError(f"{needed}: missing ({what}); cannot pack {exp_dir}")
    tokenizers = run_tokenizers(exp_dir)
    if not (tokenizers / "vocab.json").is_file():
        raise FileNotFoundError(f"{tokenizers}: no vocab.json; the tokenizers of {exp_dir} are missing")
    train_config = load_yaml(exp_dir / "config.yaml")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copytree(exp_dir / "best", tmp / LM_DIR, ignore=shutil.ignore_patterns("vocab.json", "best.json"))
    shutil.copytree(tokenizers, tmp / TOKENIZERS_DIR)
    # The layout the model was trained with: the run's own copy, in case the tokenizers folder was rebuilt since.
    shutil.copy2(exp_dir / "best" / "vocab.json", tmp / TOKENIZERS_DIR / "vocab.json")
    ssl_model = _copy_discretizer(discretizer_dir, tmp / DISCRETIZER_DIR)
    shutil.copy2(exp_dir / "config.yaml", tmp / TRAIN_CONFIG)
    if decode_config is not None:
        shutil.copy2(decode_config, tmp / DECODE_CONFIG)
    manifest = {"kind": SPEECH2TEXT, "version": FORMAT_VERSION, "use_bos": bool(train_config.get("use_bos", True))}
    with atomic_write(tmp / MANIFEST) as f:
        yaml.safe_dump(manifest, f, sort_keys=False)
    best = exp_dir / "best" / "best.json"
    facts = {
        "discretizer": f"{load_yaml(discretizer_dir / 'config.yaml').get('type')} ({discretizer_dir.name})",
        "its model": ssl_model,
        "best checkpoint": json.loads(best.read_text()) if best.is_file() else None,
        **(card or {}),
    }
    with atomic_write(tmp / CARD) as f:
        f.write(model_card(out_dir.name, exp_dir.name, facts))
    replace_dir(tmp, out_dir)
    return out_dir


def model_card(name: str, run: str, facts: dict) -> str:
    """README.md of a packed model: what it is, how to use it, and what made it."""
    lines = [
        f"# {run}: a discrete-unit speech-to-text model",
        "",
        "A decoder-only speech-text LM that reads speech units and writes the transcript, with the discretizer that",
        "turns audio into those units. Every path in this folder is relative: it works wherever it is copied.",
        "",
        "## Use",
        "",
        "```",
        f"python -m toolkit.bin.transcribe --model {name} audio.wav other.flac",
        "```",
        "",
        "```python",
        "from toolkit.inference import Speech2Text",
        "",
        f'model = Speech2Text.from_pretrained("{name}")',
        'print(model.transcribe("audio.wav"))',
        "```",
        "",
        "## What made it",
        "",
    ]
    lines += fact_lines(facts)
    lines += ["", f"The resolved training config is `{TRAIN_CONFIG}`; the decoding config `{DECODE_CONFIG}`.", ""]
    return "\n".join(lines)


# ---- SLU: a distilled upstream and its task heads ----

UNDERSTAND = "understand"
UPSTREAM_DIR, HEADS_DIR = "upstream", "heads"
HEAD_WEIGHTS, HEAD_META = "head.safetensors", "task.json"
# What of a head.pt describes the task (the rest is its weights and training state).
_TASK_KEYS = ("kind", "head_config", "classes", "split_fields", "vocab", "zero_infinity")


def pack_understand(heads: list[str | Path], out_dir: str | Path, card: dict | None = None) -> Path:
    """Pack trained downstream heads (train_downstream run folders or head.pt files) with the upstream they were
    trained on into out_dir:

        toolkit_model.yaml       kind understand, the tasks
        upstream/                the frozen SSL model (save_pretrained folder), or a spec in the manifest (mfcc)
        heads/<task>/task.json   the task: kind, head config, label classes or slot vocabulary, training precision
        heads/<task>/head.safetensors   the head's weights

    Every head must have been trained on the same upstream. Written into <out_dir>.tmp, renamed when complete.
    """
    import torch
    from safetensors.torch import save_file

    from toolkit.models.downstream_task import read_task

    out_dir = Path(out_dir)
    states = []
    for head in heads:
        path = Path(head) / "head.pt" if Path(head).is_dir() else Path(head)
        states.append((path, read_task(path)))
    upstreams = {state["upstream"] for _, state in states}
    if len(upstreams) != 1:
        raise ValueError(f"the heads were trained on different upstreams ({', '.join(sorted(upstreams))}): pack apart")
    upstream = upstreams.pop()
    if upstream.startswith("text:"):
        raise ValueError(f"{upstream}: a text upstream reads transcripts, not audio; it cannot be packed for audio")
    kinds = [state["kind"] for _, state in states]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"two heads of one task ({', '.join(kinds)}): pack one head per task")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    manifest = {"kind": UNDERSTAND, "version": FORMAT_VERSION, "tasks": kinds}
    if Path(upstream).is_dir():
        shutil.copytree(upstream, tmp / UPSTREAM_DIR, ignore=shutil.ignore_patterns("checkpoints", "*.tmp"))
        manifest["upstream"] = UPSTREAM_DIR
    else:
        manifest["upstream"] = upstream  # mfcc, random:<model> or a hub name
    for path, state in states:
        folder = tmp / HEADS_DIR / state["kind"]
        folder.mkdir(parents=True)
        weights = {k: v.detach().contiguous() for k, v in state["head"].items() if isinstance(v, torch.Tensor)}
        save_file(weights, str(folder / HEAD_WEIGHTS))
        meta = {k: state[k] for k in _TASK_KEYS if k in state}
        meta["precision"] = state.get("config", {}).get("precision", "fp32")
        meta["trained_from"] = str(path)
        with atomic_write(folder / HEAD_META) as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
    with atomic_write(tmp / MANIFEST) as f:
        yaml.safe_dump(manifest, f, sort_keys=False)
    facts = {"upstream": upstream, "tasks": ", ".join(kinds), **(card or {})}
    with atomic_write(tmp / CARD) as f:
        f.write(understand_card(out_dir.name, facts))
    replace_dir(tmp, out_dir)
    return out_dir


def understand_card(name: str, facts: dict) -> str:
    lines = [
        f"# {name}: spoken language understanding",
        "",
        "A frozen speech SSL model (distilled from a text model, or not) and one head per task: intent classification",
        "(ic), slot filling (sf) or emotion recognition (er). Every path in this folder is relative.",
        "",
        "## Use",
        "",
        "```",
        f"python -m toolkit.bin.understand --model {name} audio.wav",
        "```",
        "",
        "```python",
        "from toolkit.inference import Understand",
        "",
        f'print(Understand.from_pretrained("{name}").predict("audio.wav"))   # {{"ic": ..., "sf": ...}}',
        "```",
        "",
        "## What made it",
        "",
    ]
    return "\n".join(lines + fact_lines(facts)) + "\n"


def fact_lines(facts: dict) -> list[str]:
    """A model card's facts as a markdown list; a dict value becomes a nested list, empty values are left out."""
    lines = []
    for key, value in facts.items():
        if value in (None, {}, ""):
            continue
        if isinstance(value, dict):
            lines.append(f"- {key}:")
            lines += [f"  - {k}: {v}" for k, v in value.items()]
        else:
            lines.append(f"- {key}: {value}")
    return lines
