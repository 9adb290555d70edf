"""How good are discrete units? Codebook usage, bitrate, repeats, and (with phone alignments) purity and PNMI.

Everything works on plain dicts `uttid -> 1-D int array`, as `toolkit.bin.dump_units` writes them:

    usage_stats(units, K)          utterances, frames, units used / unused, entropy, perplexity exp(H)
    bitrate(units, K, seconds, C)  naive bits/s (tokens * log2 of the codebook size) and entropy-coded bits/s
    run_stats(units, seconds)      mean run length of repeated units, tokens/s after removing repeats
    phone_unit_stats(...)          phone purity, cluster purity and PNMI from frame-level phone/unit co-occurrence
    unit_report(...)               all of the above as one JSON-ready dict; format_report() lays it out as text

Phone metrics follow the HuBERT paper (Hsu et al. 2021, "Analysis"): with the joint distribution p(y, z) of the
phone label y and the unit z over frames, phone purity = E_z[max_y p(y|z)], cluster purity = E_y[max_z p(z|y)]
and PNMI = I(y; z) / H(y), the share of phone uncertainty a unit removes. Our default counts every aligned frame,
silence included; `exclude` drops frames whose phone is in it (both sides of the joint) when silence, which is
easy to predict and frequent, should not weigh in.

Units and alignments run at different rates: unit frame t at rate r_u covers [t / r_u, (t + 1) / r_u) and takes
the phone at its centre, alignment index floor((t + 0.5) / r_u * r_a), clipped to the last alignment frame. (At
50 Hz against 100 Hz that is index 2t + 1: a unit made of two stacked 10 ms frames sits on the boundary between
them and takes the later one.) A unit frame that starts at or after the end of the alignment has no phone, and
alignment frames after the end of the last unit frame have no unit; both are counted, not paired. Utterances whose
unit count differs from the alignment's length (converted to unit frames) by more than 2 are reported.

Multi-codebook units (EnCodec-style, C tokens per frame, token c of a frame in codebook c with its id offset by
c * codebook_size) are split with `split_codebooks`; usage and phone metrics are computed per codebook with
relative ids, and codebook 0 is the headline.

Length: just over 500 lines: five metrics and their report, which share the rate alignment and codebook split.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.config import load_yaml
from toolkit.fileio import TableError, iter_table, read_table

log = logging.getLogger(__name__)

# How many ids a warning quotes: enough to find the problem, short enough to read.
_SHOWN_IDS = 5
# Utterances whose unit and alignment lengths differ by more unit frames than this are reported.
LENGTH_TOLERANCE = 2
# Guards floor() against float error where a unit centre falls exactly on an alignment frame boundary.
_EPS = 1e-6


def _quote_ids(ids: Sequence[str]) -> str:
    shown = ", ".join(f"'{i}'" for i in ids[:_SHOWN_IDS])
    return shown + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


# ---- reading ----


def read_units(path: str | Path, num_units: int | None = None, codebooks: int = 1) -> dict[str, np.ndarray]:
    """A units file (`uttid u1 u2 ...`) as uttid -> int64 array of the tokens as written.

    Raises TableError naming the file and line for a token that is not a non-negative integer, a token >= num_units
    (when given), a line whose token count is not a multiple of `codebooks`, a token outside its codebook's id range
    (when codebooks > 1 and num_units is given), a duplicate id, or an empty file.
    """
    if codebooks < 1:
        raise ValueError(f"codebooks must be >= 1, got {codebooks}")
    if num_units is not None and num_units % codebooks:
        raise ValueError(f"{num_units} units do not split into {codebooks} codebooks of equal size")
    size = num_units // codebooks if num_units is not None else None
    units: dict[str, np.ndarray] = {}
    first_seen: dict[str, int] = {}
    for lineno, utt, value in iter_table(path):
        if utt in units:
            raise TableError(path, lineno, f"duplicate utterance '{utt}' (first on line {first_seen[utt]})")
        tokens = value.split()
        try:
            ids = np.array(tokens, dtype=np.int64)
        except (ValueError, OverflowError):
            bad = next((t for t in tokens if not _is_int(t)), value)
            problem = "is too large" if bad.lstrip("+-").isdigit() else "is not an integer"
            raise TableError(path, lineno, f"'{utt}': unit '{bad}' {problem}") from None
        if ids.min() < 0:
            raise TableError(path, lineno, f"'{utt}': unit '{tokens[int(np.argmin(ids))]}' is negative")
        if len(ids) % codebooks:
            raise TableError(path, lineno, f"'{utt}': {len(ids)} units are not a multiple of {codebooks} codebooks")
        if num_units is not None:
            # With codebooks, token i of a frame must lie in codebook (i % C)'s range [c * size, (c + 1) * size).
            offset = (np.arange(len(ids)) % codebooks) * size
            bad_at = np.flatnonzero((ids < offset) | (ids >= offset + size))
            if bad_at.size:
                i = int(bad_at[0])
                where = f"codebook {i % codebooks} range [{offset[i]}, {offset[i] + size})" if codebooks > 1 else ""
                limit = where or f"range [0, {num_units})"
                raise TableError(path, lineno, f"'{utt}': unit '{tokens[i]}' (token {i + 1}) is outside the {limit}")
        units[utt] = ids
        first_seen[utt] = lineno
    if not units:
        raise ValueError(f"{path}: the units file is empty")
    return units


def _is_int(token: str) -> bool:
    """Whether numpy reads the token as an int64 (so an integer too large for one is not)."""
    try:
        return -(2**63) <= int(token) < 2**63
    except ValueError:
        return False


def read_phone_ali(path: str | Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """A phone alignment (`uttid p1 p2 ...`, one label per frame) as uttid -> int32 phone ids, and the phone names.

    An id alone on its line is an empty alignment (the data dir format allows it).
    """
    names: dict[str, int] = {}
    ali = {}
    for utt, value in read_table(path, allow_empty_value=True).items():
        # A loop over labels, but only to read them; counting is vectorised below.
        ali[utt] = np.array([names.setdefault(p, len(names)) for p in value.split()], dtype=np.int32)
    return ali, list(names)


def read_durations(path: str | Path) -> dict[str, float]:
    """utt2dur as uttid -> seconds; a value that is not a positive number is a TableError naming the line."""
    durations = {}
    for lineno, utt, value in iter_table(path):
        try:
            seconds = float(value)
        except ValueError:
            raise TableError(path, lineno, f"'{utt}': duration '{value}' is not a number") from None
        if not seconds > 0 or math.isinf(seconds):
            raise TableError(path, lineno, f"'{utt}': duration '{value}' is not a positive number")
        durations[utt] = seconds
    return durations


INFO_FILES = ("encodec_info.yaml", "info.yaml", "fit_info.yaml")


def discretizer_info(out_dir: str | Path) -> dict[str, Any]:
    """num_units, frame_rate and num_codebooks of a discretizer folder from its YAML files, without loading models.

    mfcc_kmeans: frame rate = 100 / stack_frames. Other types: the `frame_rate` field of the first of INFO_FILES or
    config.yaml that has one, else None (the caller must be told the rate); num_units and num_codebooks likewise.
    Missing fields are None.
    """
    out_dir = Path(out_dir)
    config_path = out_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{out_dir}: no config.yaml; is this a discretizer made by fit_discretizer?")
    config = load_yaml(config_path)
    # What a fit recorded besides its config (encodec_info.yaml: the codec's K, codebooks and frame rate).
    sources = [load_yaml(out_dir / n) for n in INFO_FILES if (out_dir / n).is_file()] + [config]

    def field(name: str):
        return next((src[name] for src in sources if src.get(name) is not None), None)

    frame_rate = field("frame_rate")
    if config.get("type") == "mfcc_kmeans":
        frame_rate = 100.0 / int(config.get("stack_frames", 1))  # 10 ms MFCC frames, stacked k at a time
    frame_rate = float(frame_rate) if frame_rate is not None else None
    num_units = field("num_units")
    codebooks = field("num_codebooks")
    return {
        "type": config.get("type"),
        "num_units": int(num_units) if num_units is not None else None,
        "frame_rate": frame_rate,
        "num_codebooks": int(codebooks) if codebooks is not None else None,
    }


# ---- statistics ----


def split_codebooks(units: Mapping[str, np.ndarray], codebooks: int, codebook_size: int) -> list[dict[str, np.ndarray]]:
    """Serialised multi-codebook units -> one dict per codebook, ids relative to the codebook (0..size-1).

    Codebook c holds tokens c, c + C, c + 2C, ... of each utterance, with ids offset by c * codebook_size.
    """
    if codebooks == 1:
        return [dict(units)]
    return [{utt: ids[c::codebooks] - c * codebook_size for utt, ids in units.items()} for c in range(codebooks)]


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def usage_stats(units: Mapping[str, np.ndarray], num_units: int) -> dict[str, Any]:
    """Codebook usage: how many of the K units occur, and how evenly (entropy, perplexity = 2^H = exp(H in nats)).

    normalized_entropy is H / log2(K): 1 when all K units are equally frequent (None when K = 1).
    """
    counts = np.bincount(np.concatenate(list(units.values())), minlength=num_units) if units else np.zeros(num_units)
    if len(counts) > num_units:
        raise ValueError(f"unit {len(counts) - 1} is outside the inventory of {num_units}")
    frames = int(counts.sum())
    entropy = _entropy_bits(counts) if frames else 0.0
    used = int((counts > 0).sum())
    return {
        "utterances": len(units),
        "frames": frames,
        "num_units": num_units,
        "used": used,
        "unused": num_units - used,
        "entropy_bits": entropy,
        "perplexity": float(2.0**entropy),
        "normalized_entropy": entropy / math.log2(num_units) if num_units > 1 else None,
    }


def total_seconds(
    units: Mapping[str, np.ndarray],
    frame_rate: float | None = None,
    durations: Mapping[str, float] | None = None,
    codebooks: int = 1,
) -> tuple[float, list[str]]:
    """Seconds of audio behind the units: durations where given, else frames / frame_rate; and the ids that lacked
    a duration. Raises ValueError when a duration is missing and there is no frame rate to fall back on."""
    durations = durations or {}
    missing = [utt for utt in units if utt not in durations]
    if missing and not frame_rate:
        what = "no utt2dur" if not durations else f"no duration for {len(missing)} utterance(s): {_quote_ids(missing)}"
        raise ValueError(f"{what}, and no frame rate to count seconds from frames")
    seconds = sum(durations[utt] for utt in units if utt in durations)
    seconds += sum(len(units[utt]) // codebooks for utt in missing) / frame_rate if missing else 0.0
    return seconds, missing


def bitrate(units: Mapping[str, np.ndarray], num_units: int, seconds: float, codebooks: int = 1) -> dict[str, Any]:
    """Bits per second of audio.

    naive: every token costs log2(codebook size) bits, sum of len(units) * log2(K / C) over utterances / seconds
    (for C = 1, len(units) * log2(K)). entropy_coded: frames * H(p_c) summed over codebooks / seconds, what an ideal
    unigram entropy coder would need.
    """
    if seconds <= 0:
        raise ValueError(f"cannot compute a bitrate over {seconds} seconds")
    size = num_units // codebooks
    tokens = sum(len(ids) for ids in units.values())
    streams = split_codebooks(units, codebooks, size)
    entropy_bits = sum(_entropy_bits(np.bincount(np.concatenate(list(s.values())))) for s in streams)
    return {
        "seconds": seconds,
        "tokens": tokens,
        "bits_per_token": math.log2(size),
        "naive_bps": tokens * math.log2(size) / seconds,
        "entropy_coded_bps": tokens // codebooks * entropy_bits / seconds,
    }


def run_stats(units: Mapping[str, np.ndarray], seconds: float) -> dict[str, Any]:
    """Repeats: mean length of runs of one unit, and the tokens left (and tokens/s) after collapsing each run."""
    frames = sum(len(ids) for ids in units.values())
    runs = sum(1 + int(np.count_nonzero(ids[1:] != ids[:-1])) for ids in units.values() if len(ids))
    return {
        "frames": frames,
        "runs": runs,
        "mean_run_length": frames / runs if runs else 0.0,
        "dedup_tokens_per_second": runs / seconds if seconds > 0 else None,
        "frames_per_second": frames / seconds if seconds > 0 else None,
    }


def unit_phone_index(num_units: int, num_ali: int, unit_rate: float, ali_rate: float) -> np.ndarray:
    """For each unit frame, the alignment frame at its centre (clipped to the last), or -1 when the unit frame
    starts at or after the end of the alignment."""
    t = np.arange(num_units)
    ratio = ali_rate / unit_rate
    index = np.minimum(np.floor((t + 0.5) * ratio + _EPS).astype(np.int64), num_ali - 1)
    index[t * ratio >= num_ali - _EPS] = -1
    return index


def joint_metrics(counts: np.ndarray) -> dict[str, Any]:
    """Phone purity, cluster purity and PNMI from a (phones x units) co-occurrence count matrix.

    PNMI is None when the phone entropy is 0 (a single phone: nothing to explain).
    """
    total = counts.sum()
    if total <= 0:
        raise ValueError("no frames pair a unit with a phone")
    joint = counts / total
    p_phone = joint.sum(axis=1)
    p_unit = joint.sum(axis=0)
    nz = joint > 0
    outer = np.outer(p_phone, p_unit)
    mutual = float((joint[nz] * np.log2(joint[nz] / outer[nz])).sum())
    h_phone = _entropy_bits(p_phone)
    return {
        # sum_z p(z) max_y p(y|z) = sum_z max_y p(y, z), and the same the other way round.
        "phone_purity": float(joint.max(axis=0).sum()),
        "cluster_purity": float(joint.max(axis=1).sum()),
        "pnmi": max(mutual, 0.0) / h_phone if h_phone > 0 else None,
        "mutual_information_bits": max(mutual, 0.0),
        "phone_entropy_bits": h_phone,
        "unit_entropy_bits": _entropy_bits(p_unit),
    }


def phone_unit_stats(
    units: Mapping[str, np.ndarray],
    phone_ali: Mapping[str, np.ndarray],
    unit_rate: float,
    ali_rate: float = 100.0,
    exclude: Collection[str] = (),
    phone_names: Sequence[str] | None = None,
    num_units: int | None = None,
) -> dict[str, Any]:
    """Phone purity, cluster purity and PNMI of units against frame-level phone ids (see the module docstring).

    phone_ali maps uttid -> phone ids indexing phone_names (names default to the ids as strings); `exclude` names
    phones whose frames are left out. Utterances without an alignment are counted and skipped; a ValueError is
    raised when no frame can be paired at all. Problems worth a warning are listed under "warnings" (not logged).
    """
    num_phones = max((int(a.max()) + 1 for a in phone_ali.values() if len(a)), default=0)
    names = list(phone_names) if phone_names is not None else [str(i) for i in range(num_phones)]
    num_phones = max(num_phones, len(names))
    largest = max((int(u.max()) + 1 for u in units.values() if len(u)), default=0)
    if num_units is None:
        num_units = largest
    elif largest > num_units:
        raise ValueError(f"unit {largest - 1} is outside the inventory of {num_units}")
    exclude = set(exclude)
    excluded_ids = np.array([i for i, name in enumerate(names) if name in exclude], dtype=np.int64)
    unknown_excluded = sorted(exclude - set(names))

    no_ali = [utt for utt in units if utt not in phone_ali]
    mismatched = []
    phone_parts, unit_parts = [], []
    unit_without_phone = ali_without_unit = 0
    for utt, ids in units.items():
        if utt not in phone_ali:
            continue
        ali = phone_ali[utt]
        if abs(len(ids) - len(ali) * unit_rate / ali_rate) > LENGTH_TOLERANCE:
            mismatched.append(utt)
        index = unit_phone_index(len(ids), len(ali), unit_rate, ali_rate)
        paired = index >= 0
        unit_without_phone += int((~paired).sum())
        # Alignment frames starting at or after the end of the last unit frame have no unit.
        covered = math.ceil(len(ids) * ali_rate / unit_rate - _EPS)
        ali_without_unit += max(len(ali) - covered, 0)
        phone_parts.append(ali[index[paired]])
        unit_parts.append(ids[paired])
    phones = np.concatenate(phone_parts) if phone_parts else np.zeros(0, dtype=np.int64)
    unit_ids = np.concatenate(unit_parts) if unit_parts else np.zeros(0, dtype=np.int64)
    keep = ~np.isin(phones, excluded_ids)
    excluded_frames = int((~keep).sum())
    phones, unit_ids = phones[keep].astype(np.int64), unit_ids[keep].astype(np.int64)
    if len(phones) == 0:
        raise ValueError(
            f"no unit frame pairs with a phone ({len(no_ali)} of {len(units)} utterance(s) have no alignment"
            + (f", {excluded_frames} frame(s) excluded" if excluded_frames else "")
            + ")"
        )
    counts = np.bincount(phones * num_units + unit_ids, minlength=num_phones * num_units)
    counts = counts.reshape(num_phones, num_units)

    stats: dict[str, Any] = joint_metrics(counts)
    stats.update(
        frames=int(len(phones)),
        utterances=len(units) - len(no_ali),
        phones=int((counts.sum(axis=1) > 0).sum()),
        excluded_phones=sorted(set(exclude)),
        excluded_frames=excluded_frames,
        unit_frames_without_phone=unit_without_phone,
        ali_frames_without_unit=ali_without_unit,
        utterances_without_ali=len(no_ali),
        utterances_without_ali_ids=no_ali[:_SHOWN_IDS],
        length_mismatches=len(mismatched),
        length_mismatch_ids=mismatched[:_SHOWN_IDS],
    )
    warnings = []
    if no_ali:
        warnings.append(f"{len(no_ali)} of {len(units)} utterance(s) have no phone alignment: {_quote_ids(no_ali)}")
    if mismatched:
        warnings.append(
            f"{len(mismatched)} utterance(s) have unit and alignment lengths more than {LENGTH_TOLERANCE} unit frames "
            f"apart (wrong --frame-rate or --ali-rate?): {_quote_ids(mismatched)}"
        )
    if unknown_excluded:
        warnings.append(f"excluded phone(s) not in the alignment: {', '.join(unknown_excluded)}")
    stats["warnings"] = warnings
    return stats


def unit_report(
    units: Mapping[str, np.ndarray],
    num_units: int,
    *,
    codebooks: int = 1,
    frame_rate: float | None = None,
    durations: Mapping[str, float] | None = None,
    phone_ali: Mapping[str, np.ndarray] | None = None,
    phone_names: Sequence[str] | None = None,
    ali_rate: float = 100.0,
    exclude: Collection[str] = (),
) -> dict[str, Any]:
    """Everything at once, as a JSON-ready dict: per-codebook usage and runs, bitrate, per-codebook phone metrics.

    `num_units` is the whole inventory (C codebooks of num_units / C ids each); frame_rate is in frames (not tokens)
    per second. Lists under "codebook" and "phones" have one entry per codebook; entry 0 is the headline. Warnings
    (utterances without alignment or duration, length mismatches) are logged and listed under "warnings".
    """
    if num_units % codebooks:
        raise ValueError(f"{num_units} units do not split into {codebooks} codebooks of equal size")
    size = num_units // codebooks
    warnings: list[str] = []
    seconds, no_duration = total_seconds(units, frame_rate, durations, codebooks)
    if durations is not None and no_duration:
        warnings.append(
            f"{len(no_duration)} utterance(s) have no duration; counted as frames / frame rate: "
            f"{_quote_ids(no_duration)}"
        )
    if durations is None:
        seconds_from = "frames / frame rate"
    else:
        seconds_from = "utt2dur" + (" and frames / frame rate" if no_duration else "")
    streams = split_codebooks(units, codebooks, size)
    per_codebook = []
    for stream in streams:
        entry = usage_stats(stream, size)
        runs = run_stats(stream, seconds)
        entry.update(
            mean_run_length=runs["mean_run_length"],
            runs=runs["runs"],
            dedup_tokens_per_second=runs["dedup_tokens_per_second"],
        )
        per_codebook.append(entry)
    report: dict[str, Any] = {
        "utterances": len(units),
        "frames": per_codebook[0]["frames"],
        "num_units": num_units,
        "codebooks": codebooks,
        "codebook_size": size,
        "frame_rate": frame_rate,
        "seconds": seconds,
        "seconds_from": seconds_from,
        "codebook": per_codebook,
        "bitrate": bitrate(units, num_units, seconds, codebooks),
        "phones": None,
    }
    if phone_ali is not None:
        if not frame_rate:
            raise ValueError("phone metrics need the unit frame rate")
        report["phones"] = [
            phone_unit_stats(stream, phone_ali, frame_rate, ali_rate, exclude, phone_names, size) for stream in streams
        ]
        report["ali_rate"] = ali_rate
        warnings += report["phones"][0]["warnings"]  # the same for every codebook
        for entry in report["phones"]:
            del entry["warnings"]
    for w in warnings:
        log.warning("%s", w)
    report["warnings"] = warnings
    return report


# ---- text ----


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_report(report: Mapping[str, Any]) -> str:
    """The report as a few aligned lines (pasteable into notes); codebook 0 is the headline, others follow."""
    c0 = report["codebook"][0]
    b = report["bitrate"]
    rate = f"{report['frame_rate']:g} Hz" if report["frame_rate"] else "rate unknown"
    cb = f", {report['codebooks']} codebooks of {report['codebook_size']}" if report["codebooks"] > 1 else ""
    lines = []
    if report.get("units_file"):
        lines.append(f"units        {report['units_file']}")
    lines += [
        f"data         {report['utterances']} utterances, {report['frames']} frames ({rate}{cb}), "
        f"{report['seconds']:.1f} s = {report['seconds'] / 3600:.3f} h ({report['seconds_from']})",
        f"usage        {c0['used']} / {c0['num_units']} units used ({c0['unused']} unused)",
        f"entropy      perplexity {c0['perplexity']:.1f}, normalised entropy {_num(c0['normalized_entropy'])} "
        f"(H = {c0['entropy_bits']:.3f} bits)",
        f"bitrate      {b['naive_bps']:.1f} bit/s naive ({b['bits_per_token']:.3f} bits/token), "
        f"{b['entropy_coded_bps']:.1f} bit/s entropy-coded",
        f"repeats      mean run length {c0['mean_run_length']:.3f} frames, "
        f"{_num(c0['dedup_tokens_per_second'], 1)} tokens/s after removing repeats",
    ]
    phones = report.get("phones")
    if phones:
        p0 = phones[0]
        excluded = f"{', '.join(p0['excluded_phones'])} excluded" if p0["excluded_phones"] else "all phones included"
        lines.append(
            f"phones       phone purity {p0['phone_purity']:.3f}, cluster purity {p0['cluster_purity']:.3f}, "
            f"PNMI {_num(p0['pnmi'])}"
        )
        lines.append(
            f"             {p0['frames']} frames of {p0['utterances']} utterances, {p0['phones']} phones, {excluded}; "
            f"ali at {report['ali_rate']:g} Hz"
        )
        lines.append(
            f"             unpaired: {p0['unit_frames_without_phone']} unit frames without phone, "
            f"{p0['ali_frames_without_unit']} ali frames without unit, {p0['utterances_without_ali']} utts without ali, "
            f"{p0['length_mismatches']} length mismatches"
        )
    if report["codebooks"] > 1:
        lines.append("per codebook  used  perplexity  norm.H  run len" + ("  purity  c.purity  PNMI" if phones else ""))
        for c, entry in enumerate(report["codebook"]):
            row = (
                f"  {c:<11d} {entry['used']:>5d}  {entry['perplexity']:>10.1f}  {_num(entry['normalized_entropy']):>6}"
                f"  {entry['mean_run_length']:>7.3f}"
            )
            if phones:
                p = phones[c]
                row += f"  {p['phone_purity']:>6.3f}  {p['cluster_purity']:>8.3f}  {_num(p['pnmi']):>5}"
            lines.append(row)
    for w in report.get("warnings", []):
        lines.append(f"warning      {w}")
    return "\n".join(lines) + "\n"
