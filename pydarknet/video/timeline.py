"""The report's timeline chart: one lane per brand, a bar for each appearance (matplotlib, Agg, no pyplot)."""
from __future__ import annotations

import math
import os

from ..detections import class_color
from .atomic import PathLike


def clock(seconds: float, decimals: int = 1) -> str:
    """``83.4`` -> ``"1:23.4"``; hours appear only when needed (``"1:02:03.0"``)."""
    negative, seconds = seconds < 0, round(abs(seconds), decimals)  # round first: 59.96 s is 1:00.0, not 0:60.0
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    width = 3 + decimals if decimals else 2
    text = f"{minutes:02d}:{secs:0{width}.{decimals}f}" if hours else f"{minutes}:{secs:0{width}.{decimals}f}"
    return ("-" if negative else "") + (f"{hours}:{text}" if hours else text)


_TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
_MAX_TICKS = 10
_MAX_LABEL = 28      # characters of a brand name in the lane labels


def time_ticks(start: float, end: float):
    """Tick positions and labels for a time axis: round steps, at most ``_MAX_TICKS``, every label different
    (a 4-second clip gets 0:00.5 steps, not "0:00 0:00 0:01 0:01")."""
    span = max(end - start, 1e-3)
    step = next((s for s in _TICK_STEPS if span / s <= _MAX_TICKS), _TICK_STEPS[-1] * math.ceil(span / 7200 / 10))
    decimals = 0 if step >= 1 else 1
    first = math.ceil(start / step - 1e-9) * step
    ticks = [first + k * step for k in range(int(math.floor((end - first) / step + 1e-9)) + 1)]
    return ticks, [clock(t, decimals) for t in ticks]


def _short(name: str) -> str:
    return name if len(name) <= _MAX_LABEL else name[:_MAX_LABEL - 1] + "\u2026"


def plot_timeline(path: PathLike, report) -> None:
    """Write a PNG with one lane per brand with appearances in ``report`` (a ``Report``) over its analysed time."""
    # Figure + Agg canvas directly: no pyplot, so the caller's matplotlib backend and state stay untouched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [b for b in report.brands if b.appearances]
    figure = Figure(figsize=(10, 1.3 + 0.45 * max(1, len(shown))), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for lane, summary in enumerate(shown):
        b, g, r = class_color(summary.class_id)
        spans = [(a.start, a.duration) for a in report.appearances if a.brand == summary.brand]
        axes.broken_barh(spans, (lane - 0.35, 0.7), facecolors=(r / 255, g / 255, b / 255), edgecolor="black",
                         linewidth=0.5)
    if not shown:
        axes.text(0.5, 0.5, "no appearance lasted the minimum duration", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set_yticks(range(len(shown)))
    axes.set_yticklabels([_short(b.brand) for b in shown])
    axes.set_ylim(len(shown) - 0.5 if shown else 0.5, -0.5)  # first (most on screen) brand on top
    end = report.start + max(report.runtime, 1e-3)
    axes.set_xlim(report.start, end)
    ticks, labels = time_ticks(report.start, end)
    axes.set_xticks(ticks)
    axes.set_xticklabels(labels)
    axes.set_xlabel("time in the video")
    axes.grid(axis="x", alpha=0.3)
    axes.set_title("Appearances, per brand")
    figure.tight_layout()    # room for the longest lane label: nothing is cut off at the left
    figure.savefig(os.fspath(path), format="png")
