"""RESULTS.md: every score.json under a recipe's exp/ gathered into paste-ready markdown tables.

Scores live at `exp/<tag>/decode/<set>/score.json` (ASR) and `exp/<tag>/eval/<set>/score.json` (SLU). Only the
block between the markers below is regenerated, so hand-written text around it survives.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from toolkit.fileio import atomic_write

log = logging.getLogger(__name__)

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"

KIND_TITLES = {
    "asr": "ASR",
    "ic": "SLU: intent classification",
    "er": "SLU: emotion recognition",
    "sf": "SLU: slot filling",
    "slu": "SLU",
}
# Column order for known metrics; anything else a score.json holds follows, sorted. (key, header, is percent)
ASR_COLUMNS = [("n_utt", "#utt", False), ("wer", "WER", True), ("cer", "CER", True), ("sent_err", "S.Err", True)]
_KNOWN_HEADERS = {
    "n_utt": "#utt",
    "accuracy": "Acc",
    "slot_type_f1": "Slot type F1",
    "slot_value_cer": "Slot value CER",
    "slot_edit_f1": "Slot edit F1",
    "slot_edit_f1_full": "Slot edit F1 (full)",
    "wer": "WER",
    "cer": "CER",
    "sent_err": "S.Err",
}
_SEED = re.compile(r"^(?P<base>.+)_seed(?P<seed>\d+)$")


@dataclass
class ScoreEntry:
    """One score.json: which kind of task, the experiment tag, the evaluation set and its metrics."""

    kind: str
    tag: str
    set: str
    metrics: dict[str, object]
    path: Path | None = None


def _kind_of(metrics: Mapping[str, object], stage_dir: str) -> str:
    task = metrics.get("task")
    if isinstance(task, str) and task in KIND_TITLES:
        return task
    return "asr" if stage_dir.startswith("decode") else "slu"


def find_scores(exp_dir: str | Path) -> list[ScoreEntry]:
    """Every `<tag>/{decode,eval}*/<set>/score.json` under `exp_dir`, sorted by kind, tag and set.

    A stage directory named other than plain decode/eval (e.g. `decode_beam5`) is appended to the tag, so two
    decoding setups of one model stay apart. An unreadable score.json raises ValueError naming the file.
    """
    exp = Path(exp_dir)
    if not exp.is_dir():
        raise FileNotFoundError(f"{exp}: no such directory")
    entries = []
    for path in sorted(exp.rglob("score.json")):
        parts = path.relative_to(exp).parts
        stage = parts[-3] if len(parts) >= 4 else ""
        if not (stage.startswith("decode") or stage.startswith("eval")):
            log.warning("ignoring %s: not under <tag>/decode/<set>/ or <tag>/eval/<set>/", path)
            continue
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable score.json ({e})") from None
        if not isinstance(metrics, dict):
            raise ValueError(f"{path}: a score.json must hold a JSON object")
        tag = "/".join(parts[:-3]) + ("" if stage in ("decode", "eval") else f"/{stage}")
        entries.append(ScoreEntry(_kind_of(metrics, stage), tag, parts[-2], metrics, path))
    entries.sort(key=lambda e: (list(KIND_TITLES).index(e.kind), e.tag, e.set))
    return entries


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _fmt(v: object, percent: bool) -> str:
    if not _is_number(v):
        return "-"
    return f"{v:.2f}" if percent or isinstance(v, float) else str(v)


def _columns(kind: str, entries: list[ScoreEntry]) -> list[tuple[str, str, bool]]:
    if kind == "asr":
        return ASR_COLUMNS
    # SLU: every rate the jsons hold (rates are floats; integer counts like n_ref_slots stay in the json), the
    # known headline metrics first, then per-slot accuracies, then anything else by name.
    rates = {k for e in entries for k, v in e.metrics.items() if isinstance(v, float)}
    ordered = ["n_utt"] + [k for k in _KNOWN_HEADERS if k in rates]
    ordered += sorted(k for k in rates if k.startswith("acc_") and k not in ordered)
    ordered += sorted(k for k in rates if k not in ordered)
    return [(k, _KNOWN_HEADERS.get(k, k), k != "n_utt") for k in ordered]


def markdown_tables(entries: Iterable[ScoreEntry]) -> str:
    """One markdown table per kind, rows = (tag, set) in sorted order; rates in percent with 2 decimals."""
    by_kind: dict[str, list[ScoreEntry]] = {}
    for e in entries:
        by_kind.setdefault(e.kind, []).append(e)
    if not by_kind:
        return "No score.json found.\n"
    blocks = []
    for kind in KIND_TITLES:
        rows = sorted(by_kind.get(kind, []), key=lambda e: (e.tag, e.set))
        if not rows:
            continue
        cols = _columns(kind, rows)
        lines = [
            f"### {KIND_TITLES[kind]}",
            "",
            "| tag | set | " + " | ".join(h for _, h, _ in cols) + " |",
            "|---|---|" + "---:|" * len(cols),
        ]
        for e in rows:
            cells = [_fmt(e.metrics.get(k), pct) for k, _, pct in cols]
            lines.append(f"| {e.tag} | {e.set} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_name() -> str:
    # platform.processor() is often empty on Linux; /proc/cpuinfo has the marketing name.
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpu_names() -> str:
    # nvidia-smi, not torch.cuda: importing torch and initialising CUDA costs seconds for one header line.
    if shutil.which("nvidia-smi") is None:
        return "none"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    names = [n.strip() for n in out.splitlines() if n.strip()]
    if not names:
        return "none"
    return ", ".join(f"{names.count(n)} x {n}" for n in dict.fromkeys(names))


def environment() -> dict[str, str]:
    """Versions and hardware for the results header (package versions read without importing them)."""
    return {
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "gpu": _gpu_names(),
    }


def git_version(where: str | Path) -> str:
    """Short commit hash of the repository holding `where`, '-dirty' if tracked files changed; 'unknown' outside git."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            return "unknown"
        # Untracked files are ignored: recipe outputs (exp/, data/) are untracked and say nothing about the code.
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return head.stdout.strip() + ("-dirty" if dirty else "")


def results_block(entries: Iterable[ScoreEntry], env: Mapping[str, str], git: str, now: datetime.datetime) -> str:
    """The regenerated part of RESULTS.md, markers included."""
    header = [
        BEGIN,
        "<!-- generated by `python -m toolkit.bin.make_results`; edits inside this block are overwritten -->",
        "",
        f"- date: {now.strftime('%Y-%m-%d %H:%M %Z').strip()}",
        f"- git: {git}",
        f"- python {env['python']}, torch {env['torch']}, transformers {env['transformers']}",
        f"- platform: {env['platform']}",
        f"- cpu: {env['cpu']}",
        f"- gpu: {env['gpu']}",
        "",
    ]
    entries = list(entries)
    return "\n".join(header) + "\n" + markdown_tables(entries) + seed_table(entries) + "\n" + END + "\n"


SEED_METRICS = ("wer", "cer", "accuracy", "slot_type_f1", "slot_value_cer")  # what a paper table reports


def seed_table(entries: Iterable[ScoreEntry]) -> str:
    """Mean ± sample std over seeds of runs tagged `<name>_seed<N>`, one table per kind with that kind's metrics.

    A run with a single seed shows its value alone: a spread of one sample would read as a spread of zero.
    """
    summaries = aggregate_seeds(entries)
    if not summaries:
        return ""
    lines = ["", "### Mean and spread over seeds (mean ± sample std)"]
    for kind in dict.fromkeys(s.kind for s in summaries):
        group = [s for s in summaries if s.kind == kind]
        metrics = [m for m in SEED_METRICS if any(m in s.mean for s in group)]
        lines += [
            "",
            f"{KIND_TITLES.get(kind, kind)}:",
            "",
            "| run | set | seeds | " + " | ".join(_KNOWN_HEADERS.get(m, m) for m in metrics) + " |",
            "|---|---|---|" + "---:|" * len(metrics),
        ]
        for summary in group:
            cells = []
            for m in metrics:
                if m not in summary.mean:
                    cells.append("-")
                elif len(summary.seeds) == 1:
                    cells.append(f"{summary.mean[m]:.2f}")
                else:
                    cells.append(f"{summary.mean[m]:.2f} ± {summary.std[m]:.2f}")
            seeds = ",".join(str(seed) for seed in summary.seeds)
            lines.append(f"| {summary.tag} | {summary.set} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def splice_block(
    existing: str | None,
    block: str,
    title: str,
    path: str | Path = "RESULTS.md",
    begin: str = BEGIN,
    end: str = END,
) -> str:
    """Put `block` between the markers `begin`/`end` of `existing`; with no file, a new one; with no markers, append
    it. Appending rather than overwriting keeps a hand-written RESULTS.md that predates the markers.
    """
    if existing is None:
        return f"# {title}\n\n{block}"
    n_begin, n_end = existing.count(begin), existing.count(end)
    if n_begin == 0 and n_end == 0:
        return existing.rstrip("\n") + "\n\n" + block
    start, stop = existing.find(begin), existing.find(end)
    if n_begin != 1 or n_end != 1 or stop < start:
        raise ValueError(f"{path}: expected one '{begin}' followed by one '{end}'")
    rest = existing[stop + len(end) :]
    return existing[:start] + block.rstrip("\n") + (rest if rest.strip() else "\n")


def write_results(
    exp_dir: str | Path,
    out: str | Path,
    title: str = "Results",
    env: Mapping[str, str] | None = None,
    git: str | None = None,
    now: datetime.datetime | None = None,
) -> list[ScoreEntry]:
    """Regenerate `out` from every score.json under `exp_dir`; returns the entries found.

    `env`, `git` and `now` default to the live environment, the repository holding `out`, and the current time.
    """
    out = Path(out)
    entries = find_scores(exp_dir)
    env = env if env is not None else environment()
    git = git if git is not None else git_version(out.resolve().parent)
    now = now if now is not None else datetime.datetime.now(datetime.timezone.utc)
    write_block(out, results_block(entries, env, git, now), title)
    return entries


def write_block(out: Path, block: str, title: str, begin: str = BEGIN, end: str = END) -> None:
    """Splice `block` into the file `out` between `begin` and `end` (see splice_block) and write it atomically."""
    try:
        existing: str | None = out.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except UnicodeDecodeError:
        raise ValueError(f"{out}: not valid UTF-8") from None
    text = splice_block(existing, block, title, out, begin=begin, end=end)
    with atomic_write(out) as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------------------------
# Seeds


def split_seed(tag: str) -> tuple[str, int | None]:
    """`conf_a_seed2` -> ('conf_a', 2); a tag without a `_seed<N>` suffix -> (tag, None)."""
    m = _SEED.match(tag)
    return (m["base"], int(m["seed"])) if m else (tag, None)


@dataclass
class SeedSummary:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) of each metric over the seeds of one run."""

    kind: str
    tag: str
    set: str
    seeds: list[int]
    mean: dict[str, float]
    std: dict[str, float]


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); the std of a single value is 0."""
    mu = sum(values) / len(values)
    var = sum((v - mu) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mu, math.sqrt(var)


def aggregate_seeds(entries: Iterable[ScoreEntry]) -> list[SeedSummary]:
    """Group entries whose tags differ only by a `_seed<N>` suffix (same kind and set) and summarise each metric.

    Only numeric metrics present in every seed are summarised. Tags without a seed suffix are left out.
    """
    groups: dict[tuple[str, str, str], list[tuple[int, ScoreEntry]]] = {}
    for e in entries:
        base, seed = split_seed(e.tag)
        if seed is not None:
            groups.setdefault((e.kind, base, e.set), []).append((seed, e))
    out = []
    for (kind, base, set_name), members in sorted(groups.items()):
        members.sort(key=lambda m: m[0])
        seeds = [s for s, _ in members]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{base} on {set_name}: seed listed twice in {seeds}")
        keys = [k for k, v in members[0][1].metrics.items() if _is_number(v)]
        keys = [k for k in keys if all(_is_number(e.metrics.get(k)) for _, e in members)]
        mean, std = {}, {}
        for k in keys:
            mean[k], std[k] = mean_and_std([float(e.metrics[k]) for _, e in members])  # type: ignore[arg-type]
        out.append(SeedSummary(kind, base, set_name, seeds, mean, std))
    return out
