"""What a product-placement report holds, and its lines of text: read by the report writer (``report``), its HTML
page (``report_html``), the command's printout (``cli``) and the examples, so that all of them show the same
numbers.  The numbers themselves are computed once, by ``exposure.measure_exposure``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from .exposure import BrandExposure, ExposureAppearance, ExposureReport
from .exposure_truth import TruthEvaluation
from .timeline import clock

__all__ = ["Report", "BrandSummary", "AppearanceSummary", "summary_lines", "truth_lines", "format_seconds",
           "THUMBNAIL_SIDE"]

THUMBNAIL_SIDE = 240             # longest side of a thumbnail, pixels

# the names of the earlier report: a brand's row and an appearance's row
BrandSummary = BrandExposure
AppearanceSummary = ExposureAppearance


@dataclass(frozen=True)
class Report:
    path: Optional[Path]                          # the report folder (None: measured, not written)
    title: str
    truncated: bool                               # the video ended before its announced length
    exposure: ExposureReport
    appearances: Tuple[ExposureAppearance, ...]   # the exposure log, thumbnails filled in
    truth: Optional[TruthEvaluation] = None
    remeasured_from: str = ""                     # the records file it was measured from again (--remeasure)

    @property
    def brands(self) -> Tuple[BrandExposure, ...]:
        return self.exposure.brands

    @property
    def source(self) -> str:
        return self.exposure.clip.source

    @property
    def frame_size(self) -> Tuple[int, int]:
        return self.exposure.clip.frame_size

    @property
    def sample_period(self) -> float:
        return self.exposure.sample_period

    @property
    def start(self) -> float:
        return self.exposure.start

    @property
    def runtime(self) -> float:
        return self.exposure.runtime

    @property
    def frames_processed(self) -> int:
        return self.exposure.frames_analysed

    @property
    def single_frame(self) -> bool:
        return self.exposure.single_frame


def format_seconds(value: float) -> str:
    """A duration: "4.8 s" up to a minute, then clock notation."""
    return f"{value:.1f} s" if value < 60 else clock(value)


def summary_lines(exposure: ExposureReport) -> List[str]:
    """One line per brand, as the command prints them."""
    settings = exposure.settings
    if exposure.single_frame:
        lines = []
        for b in exposure.brands:
            found = "qualifying detection" if b.qualifying_seconds > 0 else "detected, no detection passed the gates"
            lines.append(f"  {b.brand}: {found} (single image: no on-screen duration)")
        return lines
    lines = []
    for b in exposure.brands:
        line = (f"  {b.brand}: {b.clear_seconds:.1f} s clear exposure ({100 * b.runtime_share:.1f}% of the "
                f"{exposure.runtime:.1f} s analysed), {b.appearances} appearance(s) of >= {settings.min_duration:g} s")
        if b.appearances:
            line += f", quality index {b.quality_index:.2f}"
            if b.media_value is not None:
                line += f", media value {b.media_value:,.2f}{(' ' + settings.currency) if settings.currency else ''}"
        if b.ungated_seconds > b.clear_seconds + 1e-6 or not b.appearances:
            line += f" (detected in {b.ungated_seconds:.1f} s of frames before the gates)"
        lines.append(line)
    return lines


def truth_lines(evaluation: TruthEvaluation) -> List[str]:
    """The comparison with an annotation, one line per brand."""
    lines = []
    for b in evaluation.brands:
        relative = f" ({100 * b.relative_error:+.1f}%)" if b.relative_error is not None else ""
        lines.append(f"  {b.brand}: measured {b.measured_seconds:.2f} s vs true {b.true_seconds:.2f} s, error "
                     f"{b.error_seconds:+.2f} s{relative}; appearances {b.measured_appearances} vs "
                     f"{b.true_appearances} ({b.appearance_error:+d})")
    return lines
