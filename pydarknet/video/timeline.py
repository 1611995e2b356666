"""The report's timeline chart: one lane per brand, a bar for each appearance (matplotlib, Agg, no pyplot)."""
from __future__ import annotations

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


def plot_timeline(path: PathLike, report) -> None:
    """Write a PNG with one lane per brand of ``report`` (a ``Report``) over its analysed runtime."""
    # Figure + Agg canvas directly: no pyplot, so the caller's matplotlib backend and state stay untouched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    brands = [b.brand for b in report.brands]
    figure = Figure(figsize=(10, 1.3 + 0.45 * max(1, len(brands))), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for lane, brand in enumerate(brands):
        summary = report.brands[lane]
        b, g, r = class_color(summary.class_id)
        spans = [(a.start, a.duration) for a in report.appearances if a.brand == brand]
        axes.broken_barh(spans, (lane - 0.35, 0.7), facecolors=(r / 255, g / 255, b / 255), edgecolor="black",
                         linewidth=0.5)
    if not brands:
        axes.text(0.5, 0.5, "nothing detected", ha="center", va="center", transform=axes.transAxes)
    axes.set_yticks(range(len(brands)))
    axes.set_yticklabels(brands)
    axes.set_ylim(len(brands) - 0.5 if brands else 0.5, -0.5)  # first (most on screen) brand on top
    axes.set_xlim(report.start, report.start + max(report.runtime, 1e-3))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock(x, 0)))
    axes.set_xlabel("time in the video")
    axes.grid(axis="x", alpha=0.3)
    axes.set_title("On screen, per brand")
    figure.tight_layout()
    figure.savefig(os.fspath(path), format="png")
