"""Spoken language understanding metrics: intent accuracy, and slot filling as SUPERB scores Audio SNIPS.

Intent labels are plain strings; a label made of slots joins them with '|' (Fluent Speech Commands'
`action|object|location`), and an utterance is right only when the whole label matches.

Slot-filling transcripts wrap each slot value in tags: `set an alarm for B-time seven thirty E-time`. A slot is
`B-<type> <value> E-<same type>` with the shortest value that closes it. Every SF rate is reported in percent.

Parsing and counting follow s3prl's slot-filling metric (s3prl/metric/slot_filling.py), quirks included, so that
numbers compare with SUPERB's: a closing tag is matched as a prefix (`E-playlist` closes `B-playlist` at the start
of `E-playlist_owner`), stray tags are cleaned out of hypothesis values only, and slot-edit F1 counts each reference
value once against all hypothesis values of its type (extra hypothesis values of a reference type are not charged).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer

from toolkit.fileio import atomic_write
from toolkit.scoring.asr import (
    asr_summary,
    compute_asr,
    quote_ids,
    reject_unknown_hyps,
    sort_key,
    warn_missing_hyps,
    write_asr_reports,
    write_json,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------------
# Intent classification


def intent_fields(label: str) -> list[str]:
    """Split an intent label into its '|' slots, whitespace inside each collapsed (so `a  b|c` equals `a b|c`)."""
    return [" ".join(f.split()) for f in label.split("|")]


def score_intents(
    ref: Mapping[str, str], hyp: Mapping[str, str], slot_names: Sequence[str] | None = None
) -> dict[str, object]:
    """Exact-match intent accuracy in percent, plus per-slot accuracy when every reference has the same slot count.

    Per-slot keys are `acc_<name>` (names from `slot_names`, else `slot1`, `slot2`, ...). A hypothesis with
    fewer slots than the reference is wrong on the slots it lacks. Missing hypotheses count as wrong (warning);
    a hypothesis id not in `ref` raises ValueError.
    """
    if not ref:
        raise ValueError("the reference has no utterances")
    reject_unknown_hyps(ref, hyp)
    ids = sorted(ref, key=sort_key)
    missing = warn_missing_hyps(ids, hyp)

    refs = {u: intent_fields(ref[u]) for u in ids}
    hyps = {u: intent_fields(hyp[u]) if u in hyp else [] for u in ids}
    n_correct = sum(refs[u] == hyps[u] for u in ids)
    summary: dict[str, object] = {
        "task": "ic",
        "accuracy": round(100.0 * n_correct / len(ids), 4),
        "n_utt": len(ids),
        "n_correct": n_correct,
        "n_missing_hyp": len(missing),
    }

    n_fields = {len(f) for f in refs.values()}
    if len(n_fields) == 1 and (k := n_fields.pop()) > 1:
        names = list(slot_names) if slot_names else [f"slot{i + 1}" for i in range(k)]
        if len(names) != k:
            raise ValueError(f"{len(names)} slot names given but the intent labels have {k} '|' fields")
        for i, name in enumerate(names):
            right = sum(len(hyps[u]) > i and hyps[u][i] == refs[u][i] for u in ids)
            summary[f"acc_{name}"] = round(100.0 * right / len(ids), 4)
    elif slot_names:
        raise ValueError("slot names given but the reference intent labels do not all have the same '|' fields")
    return summary


# ---------------------------------------------------------------------------------------------------------------
# Slot filling

# s3prl's pattern: no word boundaries, so `E-time` closes a slot at the start of `E-timezone` (see the docstring).
SLOT_PATTERN = re.compile(r"B-(\S+) (.+?) E-\1")
_TAG = re.compile(r"^[BE]-\S+$")
_OPEN_TAG = re.compile(r"B-\S+ ")
_CLOSE_TAG = re.compile(r" E-\S+")

Slot = tuple[str, str]  # (type, value)


def strip_tags(text: str) -> str:
    """The words of a tagged transcript with every B-<type> / E-<type> token removed."""
    return " ".join(w for w in text.split() if not _TAG.match(w))


def clean_value(value: str) -> str:
    """A hypothesis slot value without the tags left inside it: each `B-<x> ` and ` E-<x>` removed (as s3prl)."""
    return _CLOSE_TAG.sub("", _OPEN_TAG.sub("", value))


def parse_slots(text: str, clean_values: bool = False) -> list[Slot]:
    """(type, value) pairs in order of appearance; `clean_values` drops stray tags that a hypothesis left inside."""
    found = SLOT_PATTERN.findall(" ".join(text.split()))
    return [(t, clean_value(v) if clean_values else v) for t, v in found]


def slot_type_f1(ref_slots: Sequence[Slot], hyp_slots: Sequence[Slot]) -> float:
    """One utterance's F1 over the SETS of slot types (SUPERB): 1 when both are empty, 0 when only one is."""
    ref_types = {t for t, _ in ref_slots}
    hyp_types = {t for t, _ in hyp_slots}
    if not ref_types and not hyp_types:
        return 1.0
    if not ref_types or not hyp_types:
        return 0.0
    precision = len(hyp_types & ref_types) / len(hyp_types)
    recall = len(ref_types & hyp_types) / len(ref_types)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def char_edits(ref: str, hyp: str) -> int:
    """Character edit distance (spaces are characters), from jiwer's alignment."""
    if not ref:
        return len(hyp)
    out = jiwer.process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions


def slot_value_pairs(ref_slots: Sequence[Slot], hyp_slots: Sequence[Slot]) -> list[tuple[str, str, str]]:
    """(type, ref value, hyp value) for each reference slot: the same-type hypothesis value with the lowest CER.

    The first such value wins a tie; with no hypothesis slot of that type the hypothesis value is ''.
    """
    pairs = []
    for slot_type, ref_value in ref_slots:
        best, best_cer = "", None
        for hyp_type, hyp_value in hyp_slots:
            if hyp_type != slot_type:
                continue
            cer = char_edits(ref_value, hyp_value) / len(ref_value)
            if best_cer is None or cer < best_cer:
                best, best_cer = hyp_value, cer
        pairs.append((slot_type, ref_value, best))
    return pairs


def slot_edit_counts(ref_slots: Sequence[Slot], hyp_slots: Sequence[Slot], full: bool) -> tuple[int, int, int]:
    """(TP, FP, FN) of exact value matches per slot type, counted as s3prl's slot-edit F1 counts them.

    Each reference value is a TP when any hypothesis value of its type equals it; otherwise an FN, and also an FP
    when the hypothesis has values of that type. Only types in this utterance's reference are counted, unless
    `full`, which also charges every value of a hypothesis-only type as an FP (the "full" variant).
    """
    ref_by_type: dict[str, list[str]] = {}
    hyp_by_type: dict[str, list[str]] = {}
    for t, v in ref_slots:
        ref_by_type.setdefault(t, []).append(v)
    for t, v in hyp_slots:
        hyp_by_type.setdefault(t, []).append(v)
    tp = fp = fn = 0
    for t, values in ref_by_type.items():
        hyp_values = hyp_by_type.get(t)
        for v in values:
            if hyp_values is None:
                fn += 1
            elif v in hyp_values:
                tp += 1
            else:
                fn += 1
                fp += 1
    if full:
        fp += sum(len(v) for t, v in hyp_by_type.items() if t not in ref_by_type)
    return tp, fp, fn


def _f1(tp: int, fp: int, fn: int) -> float:
    # No slot anywhere on either side: nothing was missed or invented, which SUPERB's type F1 also scores as 1.
    return 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 1.0


@dataclass
class SlotUtt:
    """One utterance's slot-filling view, kept for the readable per-utterance report."""

    uttid: str
    ref: str
    hyp: str
    ref_slots: list[Slot]
    hyp_slots: list[Slot]
    type_f1: float
    value_pairs: list[tuple[str, str, str]]


def compute_slots(ref: Mapping[str, str], hyp: Mapping[str, str]) -> tuple[dict[str, object], list[SlotUtt]]:
    """Slot-type F1, slot-value CER and slot-edit F1 (both variants), in percent, and per-utterance details.

    Empty references are skipped with a warning; missing hypotheses are empty (warning); a hypothesis id not
    in `ref` raises ValueError.
    """
    reject_unknown_hyps(ref, hyp)
    ids = [u for u in sorted(ref, key=sort_key) if ref[u].strip()]
    empty = [u for u in sorted(ref, key=sort_key) if not ref[u].strip()]
    if empty:
        log.warning("skipping %d utterance(s) with an empty reference: %s", len(empty), quote_ids(empty))
    if not ids:
        raise ValueError("no utterance has a non-empty reference; nothing to score")
    missing = warn_missing_hyps(ids, hyp)

    utts: list[SlotUtt] = []
    value_edits = value_chars = 0
    edit = {False: [0, 0, 0], True: [0, 0, 0]}
    for u in ids:
        r_text, h_text = " ".join(ref[u].split()), " ".join(hyp.get(u, "").split())
        r_slots, h_slots = parse_slots(r_text), parse_slots(h_text, clean_values=True)
        pairs = slot_value_pairs(r_slots, h_slots)
        value_edits += sum(char_edits(rv, hv) for _, rv, hv in pairs)
        value_chars += sum(len(rv) for _, rv, _ in pairs)
        for full in (False, True):
            for i, n in enumerate(slot_edit_counts(r_slots, h_slots, full)):
                edit[full][i] += n
        utts.append(SlotUtt(u, r_text, h_text, r_slots, h_slots, slot_type_f1(r_slots, h_slots), pairs))

    summary: dict[str, object] = {
        "slot_type_f1": round(100.0 * sum(x.type_f1 for x in utts) / len(utts), 4),
        # No reference slot at all leaves CER undefined; 0 says nothing was got wrong.
        "slot_value_cer": round(100.0 * value_edits / value_chars, 4) if value_chars else 0.0,
        "slot_edit_f1": round(100.0 * _f1(*edit[False]), 4),
        "slot_edit_f1_full": round(100.0 * _f1(*edit[True]), 4),
        "n_utt": len(utts),
        "n_ref_slots": sum(len(x.ref_slots) for x in utts),
        "n_hyp_slots": sum(len(x.hyp_slots) for x in utts),
        "slot_value_edits": value_edits,
        "slot_value_chars": value_chars,
        "slot_edit_tp": edit[True][0],
        "slot_edit_fp": edit[False][1],
        "slot_edit_fp_full": edit[True][1],
        "slot_edit_fn": edit[True][2],
        "n_missing_hyp": len(missing),
        "n_empty_ref": len(empty),
    }
    return summary, utts


def _slots_str(slots: Sequence[Slot]) -> str:
    return "; ".join(f"{t}={v}" for t, v in slots) if slots else "(none)"


def slot_report(utts: Sequence[SlotUtt]) -> str:
    """A per-utterance text a user can read to see which slots went wrong."""
    lines = []
    for x in utts:
        lines += [
            f"id: {x.uttid}",
            f"REF:       {x.ref}",
            f"HYP:       {x.hyp}",
            f"REF slots: {_slots_str(x.ref_slots)}",
            f"HYP slots: {_slots_str(x.hyp_slots)}",
            f"type F1:   {100.0 * x.type_f1:.1f}",
        ]
        for t, rv, hv in x.value_pairs:
            mark = "ok" if rv == hv else f"{char_edits(rv, hv)} char error(s)"
            lines.append(f"value:     {t}: '{rv}' -> '{hv}' ({mark})")
        lines.append("")
    return "\n".join(lines)


def score_sf(
    ref: Mapping[str, str],
    hyp: Mapping[str, str],
    out_dir: str | Path,
    utt2spk: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Score tagged transcripts; write score.json, slots.txt, and the ASR reports of the tag-free transcripts.

    score.json holds the slot metrics of `compute_slots` plus `wer`/`cer` (and their counts) of the transcripts
    with tags removed.
    """
    summary, utts = compute_slots(ref, hyp)
    # Scored ids and their hypotheses are settled above (with the warnings), so the ASR pass gets no missing ids.
    plain_ref = {x.uttid: strip_tags(x.ref) for x in utts}
    plain_hyp = {x.uttid: strip_tags(x.hyp) for x in utts}
    asr = compute_asr(plain_ref, plain_hyp, utt2spk)
    write_asr_reports(asr, out_dir)
    with atomic_write(Path(out_dir) / "slots.txt") as f:
        f.write(slot_report(utts))
    asr_part = {k: v for k, v in asr_summary(asr).items() if k not in summary and k not in ("lowercase", "strip_punct")}
    full = {"task": "sf", **summary, **asr_part}
    write_json(Path(out_dir) / "score.json", full)
    return full


def score_ic(
    ref: Mapping[str, str],
    hyp: Mapping[str, str],
    out_dir: str | Path,
    slot_names: Sequence[str] | None = None,
    task: str = "ic",
) -> dict[str, object]:
    """Score intent (or, task "er", emotion) labels; write score.json and intents.txt (the wrong utterances)."""
    summary = {**score_intents(ref, hyp, slot_names), "task": task}
    with atomic_write(Path(out_dir) / "intents.txt") as f:
        for u in sorted(ref, key=sort_key):
            h = hyp.get(u, "")
            if intent_fields(ref[u]) != intent_fields(h):
                f.write(f"{u}\tref={ref[u]}\thyp={h}\n")
    write_json(Path(out_dir) / "score.json", summary)
    return summary
