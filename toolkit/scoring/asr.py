"""Word and character error rates with jiwer, reported the way sclite and ESPnet lay them out.

`score_asr` is the one call a decode stage needs: it writes `ref.trn`, `hyp.trn`, `score_wer/result.txt`,
`score_cer/result.txt` and `score.json` into one directory. The pieces (`compute_asr`, `write_asr_reports`,
`asr_summary`) are public so SLU scoring can reuse them on transcripts with slot tags removed.

CER counts characters with spaces kept as characters (a dropped word boundary is an error), after runs of
whitespace are collapsed to one space and the ends stripped.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import jiwer

from toolkit.fileio import atomic_write

log = logging.getLogger(__name__)

Unit = Literal["word", "char"]

# How many ids a warning or error quotes before "and N more": enough to find the problem, short enough to read.
_SHOWN_IDS = 5


def normalize_text(text: str, lowercase: bool = False, strip_punct: bool = False) -> str:
    """Collapse whitespace and optionally lower-case and drop punctuation (any Unicode category P* character).

    Punctuation is deleted, not replaced by a space, so "don't" becomes "dont" on both sides alike.
    """
    if lowercase:
        text = text.lower()
    if strip_punct:
        text = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return " ".join(text.split())


def quote_ids(ids: list[str]) -> str:
    """The first few ids, quoted, then "and N more": enough to find the problem in a message."""
    shown = ", ".join(f"'{i}'" for i in ids[:_SHOWN_IDS])
    return shown + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


def sort_key(uttid: str) -> bytes:
    """The C-locale order Kaldi tools and fileio.write_table use."""
    return uttid.encode("utf-8")


def reject_unknown_hyps(ref: Mapping[str, str], hyp: Mapping[str, str]) -> None:
    """Raise ValueError naming hypothesis ids absent from the reference: it means the wrong files were paired."""
    unknown = sorted((u for u in hyp if u not in ref), key=sort_key)
    if unknown:
        raise ValueError(f"{len(unknown)} hypothesis id(s) not in the reference: {quote_ids(unknown)}")


def warn_missing_hyps(ids: list[str], hyp: Mapping[str, str]) -> list[str]:
    """Log a warning naming reference ids with no hypothesis (they are scored as empty) and return them."""
    missing = [u for u in ids if u not in hyp]
    if missing:
        log.warning(
            "%d of %d utterance(s) have no hypothesis and are scored as empty: %s",
            len(missing),
            len(ids),
            quote_ids(missing),
        )
    return missing


def speaker_of(uttid: str, utt2spk: Mapping[str, str] | None = None) -> str:
    """The speaker sclite groups an utterance under: utt2spk's entry, else the id's prefix before '-', else the id."""
    if utt2spk is not None:
        if uttid not in utt2spk:
            raise ValueError(f"utt2spk has no speaker for utterance '{uttid}'")
        return utt2spk[uttid]
    return uttid.split("-", 1)[0] or uttid


@dataclass
class Counts:
    """Error counts over some utterances; percentages are relative to the number of reference tokens."""

    n_snt: int = 0
    n_ref: int = 0
    hits: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0
    snt_err: int = 0

    def add(self, other: Counts) -> None:
        self.n_snt += other.n_snt
        self.n_ref += other.n_ref
        self.hits += other.hits
        self.sub += other.sub
        self.dele += other.dele
        self.ins += other.ins
        self.snt_err += other.snt_err

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    def pct(self, n: int) -> float:
        # An empty reference set has no defined rate; 0 keeps tables printable (empty refs are skipped anyway).
        return 100.0 * n / self.n_ref if self.n_ref else 0.0

    @property
    def error_rate(self) -> float:
        return self.pct(self.errors)

    @property
    def sent_err_rate(self) -> float:
        return 100.0 * self.snt_err / self.n_snt if self.n_snt else 0.0


@dataclass
class UttAlignment:
    """One utterance's alignment: a list of (op, ref token, hyp token), op in C/S/D/I, token '' when absent."""

    uttid: str
    spk: str
    counts: Counts
    ops: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class AsrResult:
    """Everything `score_asr` writes: the scored texts, word and char alignments, and what was skipped."""

    refs: dict[str, str]
    hyps: dict[str, str]
    speakers: dict[str, str]
    words: list[UttAlignment]
    chars: list[UttAlignment]
    missing_hyp: list[str]
    empty_ref: list[str]
    lowercase: bool = False
    strip_punct: bool = False

    def totals(self, unit: Unit) -> Counts:
        total = Counts()
        for utt in self.words if unit == "word" else self.chars:
            total.add(utt.counts)
        return total


_OP = {"equal": "C", "substitute": "S", "delete": "D", "insert": "I"}


def align(refs: list[str], hyps: list[str], unit: Unit) -> list[tuple[Counts, list[tuple[str, str, str]]]]:
    """Align each ref/hyp pair with jiwer (one batched call) and return per-pair counts and token operations."""
    if unit == "word":
        out = jiwer.process_words(refs, hyps)
    else:
        out = jiwer.process_characters(refs, hyps)
    results = []
    for ref_toks, hyp_toks, chunks in zip(out.references, out.hypotheses, out.alignments, strict=True):
        counts = Counts(n_snt=1, n_ref=len(ref_toks))
        ops: list[tuple[str, str, str]] = []
        for ch in chunks:
            op = _OP[ch.type]
            r = ref_toks[ch.ref_start_idx : ch.ref_end_idx]
            h = hyp_toks[ch.hyp_start_idx : ch.hyp_end_idx]
            if op in "CS":
                ops.extend((op, a, b) for a, b in zip(r, h, strict=True))
            elif op == "D":
                ops.extend((op, a, "") for a in r)
            else:
                ops.extend((op, "", b) for b in h)
        counts.hits = sum(op == "C" for op, _, _ in ops)
        counts.sub = sum(op == "S" for op, _, _ in ops)
        counts.dele = sum(op == "D" for op, _, _ in ops)
        counts.ins = sum(op == "I" for op, _, _ in ops)
        counts.snt_err = int(counts.errors > 0)
        results.append((counts, ops))
    return results


def compute_asr(
    ref: Mapping[str, str],
    hyp: Mapping[str, str],
    utt2spk: Mapping[str, str] | None = None,
    lowercase: bool = False,
    strip_punct: bool = False,
) -> AsrResult:
    """Align every reference utterance with its hypothesis, by words and by characters.

    A hypothesis id not in `ref` raises ValueError naming it (it means the wrong files were paired). A reference
    with no hypothesis is scored against an empty one (all deletions) with a warning; an empty reference (after
    normalisation) cannot be scored and is skipped with a warning.
    """
    reject_unknown_hyps(ref, hyp)
    refs: dict[str, str] = {}
    empty_ref: list[str] = []
    for uttid in sorted(ref, key=sort_key):
        text = normalize_text(ref[uttid], lowercase, strip_punct)
        if text:
            refs[uttid] = text
        else:
            empty_ref.append(uttid)
    if empty_ref:
        log.warning("skipping %d utterance(s) with an empty reference: %s", len(empty_ref), quote_ids(empty_ref))
    if not refs:
        raise ValueError("no utterance has a non-empty reference; nothing to score")

    missing = warn_missing_hyps(list(refs), hyp)
    hyps = {u: normalize_text(hyp.get(u, ""), lowercase, strip_punct) for u in refs}
    speakers = {u: speaker_of(u, utt2spk) for u in refs}

    ids = list(refs)
    ref_list = [refs[u] for u in ids]
    hyp_list = [hyps[u] for u in ids]
    words = [
        UttAlignment(u, speakers[u], c, o) for u, (c, o) in zip(ids, align(ref_list, hyp_list, "word"), strict=True)
    ]
    chars = [
        UttAlignment(u, speakers[u], c, o) for u, (c, o) in zip(ids, align(ref_list, hyp_list, "char"), strict=True)
    ]
    return AsrResult(refs, hyps, speakers, words, chars, missing, empty_ref, lowercase, strip_punct)


def trn_line(text: str, spk: str, uttid: str) -> str:
    """One sclite trn line as ESPnet's `paste` writes it: the text, a tab, then `(spk-uttid)`."""
    return f"{text}\t({spk}-{uttid})\n"


def _summary_table(utts: list[UttAlignment], unit: Unit, title: str) -> list[str]:
    by_spk: dict[str, Counts] = {}
    total = Counts()
    for utt in utts:
        by_spk.setdefault(utt.spk, Counts()).add(utt.counts)
        total.add(utt.counts)
    n_name = "# Wrd" if unit == "word" else "# Chr"
    spk_w = max([len("Sum/Avg"), len("SPKR")] + [len(s) for s in by_spk])
    num_w = max(5, len(str(total.n_ref)), len(str(total.n_snt)))

    def row(name: str, c: Counts) -> str:
        pcts = [c.pct(c.hits), c.pct(c.sub), c.pct(c.dele), c.pct(c.ins), c.error_rate, c.sent_err_rate]
        return (
            f"| {name:<{spk_w}} | {c.n_snt:>{num_w}} {c.n_ref:>{num_w}} | "
            + " ".join(f"{p:>5.1f}" for p in pcts)
            + " |"
        )

    header = (
        f"| {'SPKR':<{spk_w}} | {'# Snt':>{num_w}} {n_name:>{num_w}} | "
        + " ".join(f"{h:>5}" for h in ("Corr", "Sub", "Del", "Ins", "Err", "S.Err"))
        + " |"
    )
    width = len(header)
    rule = "|" + "-" * (width - 2) + "|"
    double = "|" + "=" * (width - 2) + "|"
    lines = [
        "," + "-" * (width - 2) + ".",
        "|" + title.center(width - 2) + "|",
        rule,
        header,
        rule,
    ]
    lines += [row(spk, by_spk[spk]) for spk in sorted(by_spk, key=sort_key)]
    lines += [double, row("Sum/Avg", total), "`" + "-" * (width - 2) + "'"]
    return lines


def _show(tok: str, unit: Unit) -> str:
    # A space character is invisible in a char alignment; ESPnet's CER files spell it <space>.
    return "<space>" if unit == "char" and tok == " " else tok


def _alignment_block(utt: UttAlignment, unit: Unit) -> list[str]:
    """sclite .pra style: errors upper-cased, *** where a side has no token, and an Eval line of S/D/I."""
    ref_cells, hyp_cells, eval_cells = [], [], []
    for op, r, h in utt.ops:
        r, h = _show(r, unit), _show(h, unit)
        if op != "C":
            r = r.upper() if r else "***"
            h = h.upper() if h else "***"
        w = max(len(r), len(h), 1)
        ref_cells.append(f"{r:<{w}}")
        hyp_cells.append(f"{h:<{w}}")
        eval_cells.append(f"{'' if op == 'C' else op:<{w}}")
    c = utt.counts
    return [
        f"id: ({utt.spk}-{utt.uttid})",
        f"Scores: (#C #S #D #I) {c.hits} {c.sub} {c.dele} {c.ins}",
        "REF:  " + " ".join(ref_cells).rstrip(),
        "HYP:  " + " ".join(hyp_cells).rstrip(),
        ("Eval: " + " ".join(eval_cells)).rstrip(),
        "",
    ]


def result_text(utts: list[UttAlignment], unit: Unit) -> str:
    """The whole result.txt: the per-speaker summary table, then every utterance's alignment."""
    what = "WORD" if unit == "word" else "CHARACTER"
    lines = _summary_table(utts, unit, f"SYSTEM SUMMARY PERCENTAGES by SPEAKER ({what})")
    lines += ["", f"{what} ALIGNMENTS (errors upper-cased, *** = nothing on that side; Eval: S/D/I)", ""]
    for utt in utts:
        lines += _alignment_block(utt, unit)
    return "\n".join(lines) + "\n"


def write_asr_reports(result: AsrResult, out_dir: str | Path) -> None:
    """Write ref.trn, hyp.trn (word level) and score_wer/result.txt, score_cer/result.txt, each atomically."""
    out = Path(out_dir)
    for name, texts in (("ref.trn", result.refs), ("hyp.trn", result.hyps)):
        with atomic_write(out / name) as f:
            for uttid, text in texts.items():
                f.write(trn_line(text, result.speakers[uttid], uttid))
    with atomic_write(out / "score_wer" / "result.txt") as f:
        f.write(result_text(result.words, "word"))
    with atomic_write(out / "score_cer" / "result.txt") as f:
        f.write(result_text(result.chars, "char"))


def asr_summary(result: AsrResult) -> dict[str, object]:
    """The score.json fields for ASR: rates in percent (4 decimals), raw counts, and what was skipped."""
    w, c = result.totals("word"), result.totals("char")
    return {
        "wer": round(w.error_rate, 4),
        "cer": round(c.error_rate, 4),
        "sent_err": round(w.sent_err_rate, 4),
        "n_utt": w.n_snt,
        "n_words": w.n_ref,
        "n_chars": c.n_ref,
        "wer_hits": w.hits,
        "wer_sub": w.sub,
        "wer_del": w.dele,
        "wer_ins": w.ins,
        "cer_hits": c.hits,
        "cer_sub": c.sub,
        "cer_del": c.dele,
        "cer_ins": c.ins,
        "n_missing_hyp": len(result.missing_hyp),
        "n_empty_ref": len(result.empty_ref),
        "lowercase": result.lowercase,
        "strip_punct": result.strip_punct,
    }


def write_json(path: str | Path, data: Mapping[str, object]) -> None:
    """Write a score.json atomically, keys in the given order, one per line."""
    with atomic_write(path) as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


def score_asr(
    ref: Mapping[str, str],
    hyp: Mapping[str, str],
    out_dir: str | Path,
    utt2spk: Mapping[str, str] | None = None,
    lowercase: bool = False,
    strip_punct: bool = False,
) -> dict[str, object]:
    """Score hypotheses against references and write every report into `out_dir`; returns score.json's content."""
    result = compute_asr(ref, hyp, utt2spk, lowercase, strip_punct)
    write_asr_reports(result, out_dir)
    summary = {"task": "asr", **asr_summary(result)}
    write_json(Path(out_dir) / "score.json", summary)
    return summary
