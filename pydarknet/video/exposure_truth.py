"""Measured exposure against a human annotation: per brand, the error in seconds and in appearances.

The annotation is a CSV file with a header row and one row per appearance: ``brand,start,end`` (seconds, or
``[HH:]MM:SS[.fff]``; ``end`` exclusive).  Times are on the video's timeline, like ``--start``/``--end``.

Per brand, the annotation's intervals are merged where they overlap or touch (two annotators' rows for one
appearance count once) and clipped to the analysed range; then

* **true seconds** = their total length, **true appearances** = their number;
* **measured seconds** / **measured appearances** = the report's clear seconds / appearances;
* **error** = measured - true (seconds, and as a share of the true seconds), appearance error likewise;
* **agreeing seconds** = the length of the intersection of the measured appearances with the true intervals;
  **false seconds** = measured but not true, **missed seconds** = true but not measured.

A brand of the annotation that the report does not know (not detected, or another spelling) is listed with
measured 0; a measured brand the annotation does not mention is listed with true 0.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import TruthFileError
from .exposure import ExposureReport
from .source import to_seconds

__all__ = ["TruthInterval", "BrandTruthComparison", "TruthEvaluation", "read_truth_csv", "write_truth_csv",
           "evaluate_truth", "merge_intervals"]

Interval = Tuple[float, float]


@dataclass(frozen=True)
class TruthInterval:
    brand: str
    start: float
    end: float


@dataclass(frozen=True)
class BrandTruthComparison:
    brand: str
    true_seconds: float
    measured_seconds: float
    error_seconds: float              # measured - true
    relative_error: Optional[float]   # error / true seconds; None when the truth has none
    true_appearances: int
    measured_appearances: int
    appearance_error: int             # measured - true
    agreeing_seconds: float
    false_seconds: float
    missed_seconds: float


@dataclass(frozen=True)
class TruthEvaluation:
    source: str                       # the annotation file
    brands: Tuple[BrandTruthComparison, ...]

    @property
    def total_abs_error_seconds(self) -> float:
        return sum(abs(b.error_seconds) for b in self.brands)

    @property
    def appearances_exact(self) -> bool:
        return all(b.appearance_error == 0 for b in self.brands)


def read_truth_csv(path) -> List[TruthInterval]:
    """The rows of an annotation file; ``TruthFileError`` naming the file and line for anything malformed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            rows = list(csv.reader(stream))
    except FileNotFoundError:
        raise TruthFileError("no such file (the --truth annotation: brand,start,end per row)", path=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise TruthFileError(f"cannot be read ({error})", path=path) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows or [c.strip().lower() for c in rows[0][:3]] != ["brand", "start", "end"]:
        raise TruthFileError("must start with the header row brand,start,end", path=path)
    intervals = []
    for line, row in enumerate(rows[1:], 2):
        if len(row) < 3 or not row[0].strip():
            raise TruthFileError(f"line {line}: needs brand,start,end, got {','.join(row)!r}", path=path)
        try:
            start, end = to_seconds(row[1].strip()), to_seconds(row[2].strip())
        except ValueError as error:
            raise TruthFileError(f"line {line}: {error}", path=path) from None
        if end <= start:
            raise TruthFileError(f"line {line}: end ({end:g} s) must be after start ({start:g} s)", path=path)
        intervals.append(TruthInterval(row[0].strip(), start, end))
    return intervals


def write_truth_csv(path, intervals: Iterable[TruthInterval]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["brand", "start", "end"])
        for interval in intervals:
            writer.writerow([interval.brand, round(interval.start, 6), round(interval.end, 6)])


def merge_intervals(intervals: Iterable[Interval]) -> List[Interval]:
    """Sorted, with overlapping or touching intervals joined."""
    merged: List[List[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _length(intervals: Sequence[Interval]) -> float:
    return float(sum(b - a for a, b in intervals))


def _intersection(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    total = 0.0
    for a1, a2 in a:
        for b1, b2 in b:
            total += max(0.0, min(a2, b2) - max(a1, b1))
    return total


def evaluate_truth(report: ExposureReport, truth: Sequence[TruthInterval], source: str = "") -> TruthEvaluation:
    """Compare ``report`` (its clear seconds and appearances) with annotated intervals (see the module docstring)."""
    low, high = report.start, report.end
    true_by_brand: Dict[str, List[Interval]] = {}
    for t in truth:
        clipped = (max(t.start, low), min(t.end, high))
        true_by_brand.setdefault(t.brand, [])
        if clipped[1] > clipped[0]:
            true_by_brand[t.brand].append(clipped)
    measured_by_brand: Dict[str, List[Interval]] = {b.brand: [] for b in report.brands if b.appearances}
    for a in report.appearances:
        measured_by_brand.setdefault(a.brand, []).append((a.start, a.end))
    names = list(dict.fromkeys([*true_by_brand, *measured_by_brand]))
    rows = []
    for name in names:
        true = merge_intervals(true_by_brand.get(name, []))
        measured = merge_intervals(measured_by_brand.get(name, []))
        true_seconds, measured_seconds = _length(true), _length(measured)
        agreeing = _intersection(true, measured)
        error = measured_seconds - true_seconds
        rows.append(BrandTruthComparison(
            name, true_seconds, measured_seconds, error, error / true_seconds if true_seconds > 0 else None,
            len(true), len(measured_by_brand.get(name, [])), len(measured_by_brand.get(name, [])) - len(true),
            agreeing, measured_seconds - agreeing, true_seconds - agreeing))
    rows.sort(key=lambda r: (-r.true_seconds, -r.measured_seconds, r.brand))
    return TruthEvaluation(source, tuple(rows))
