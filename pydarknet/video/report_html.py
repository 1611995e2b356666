"""The report's ``index.html``: one self-contained page (inline CSS, relative image links, no scripts, no CDN)."""
from __future__ import annotations

from html import escape
from typing import List

from .report import CENTRE_FRACTION, Report
from .timeline import clock

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1d2230; background: #fafbfc; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; font-size: 1.25rem; }
.meta { color: #5b6275; margin: 0 0 1rem; }
.warning { background: #fff4d6; border: 1px solid #e8c15a; padding: .6rem .9rem; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; background: white; font-variant-numeric: tabular-nums; }
th, td { padding: .45rem .6rem; border-bottom: 1px solid #e3e6ec; text-align: right; white-space: nowrap; }
th { background: #eef1f6; font-weight: 600; white-space: normal; vertical-align: bottom; }
.scroll { overflow-x: auto; } th:first-child, td:first-child { text-align: left; }
.timeline { width: 100%; border: 1px solid #e3e6ec; background: white; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: .9rem; }
.card { background: white; border: 1px solid #e3e6ec; border-radius: 8px; overflow: hidden; }
.card img { width: 100%; height: 150px; object-fit: contain; background: #20242c; display: block; }
.card div { padding: .45rem .6rem; font-size: .85rem; } .card b { font-size: .95rem; }
.note { color: #5b6275; font-size: .85rem; }
"""


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _seconds(value: float) -> str:
    """A duration: "4.8 s" up to a minute, then clock notation."""
    return f"{value:.1f} s" if value < 60 else clock(value)


def _brand_table(report: Report) -> str:
    header = ("Brand", "On screen", "Share of runtime", "Appearances", "First seen", "Last seen", "Longest",
              "Mean area", "Max area", "Position (centre share)", "Confidence mean / min / max")
    rows = []
    for b in report.brands:
        cells = (escape(b.brand), _seconds(b.on_screen_seconds), _percent(b.runtime_share), str(b.appearances),
                 clock(b.first_seen), clock(b.last_seen), _seconds(b.longest_appearance), _percent(b.mean_area_share),
                 _percent(b.max_area_share), f"{b.position} ({_percent(b.centre_share)})",
                 f"{b.confidence_mean:.2f} / {b.confidence_min:.2f} / {b.confidence_max:.2f}")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(header)}">Nothing was detected.</td></tr>')
    return ('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{h}</th>" for h in header)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _appearance_cards(report: Report) -> str:
    sections: List[str] = []
    for brand in report.brands:
        cards = []
        for a in (a for a in report.appearances if a.brand == brand.brand):
            image = (f'<img src="{escape(a.thumbnail)}" alt="{escape(a.brand)}, track {a.track_id}" loading="lazy">'
                     if a.thumbnail else "")
            cards.append(f'<div class="card">{image}<div><b>#{a.track_id}</b> {clock(a.start)} to {clock(a.end)}'
                         f'<br>{_seconds(a.duration)}, area {_percent(a.mean_area_share)}, '
                         f'conf. {a.confidence_mean:.2f}</div></div>')
        sections.append(f"<h3>{escape(brand.brand)}</h3><div class=\"cards\">{''.join(cards)}</div>")
    return "".join(sections)


def render_index(report: Report, title: str) -> str:
    width, height = report.frame_size
    warning = ""
    if report.truncated:
        warning = ('<p class="warning">The video ended before the length its container announces (truncated or '
                   'damaged file): the figures cover only the part that could be decoded.</p>')
    meta = (f"{escape(report.source)} &middot; {width}&times;{height} &middot; analysed "
            f"{clock(report.start)} to {clock(report.start + report.runtime)} ({report.runtime:.1f} s, "
            f"{report.frames_processed} frames, one every {report.sample_period * 1000:.0f} ms)")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="meta">{meta}</p>
{warning}
<h2>Brands</h2>
{_brand_table(report)}
<p class="note">On screen: union of a brand's appearances, gaps the tracker bridged included.
Area: box area as a share of the frame. Position: <i>centre</i> when the box centre lies in the central
{CENTRE_FRACTION:.0%} of the frame's width and height, for at least half of the detections.
Data: <a href="summary.csv">summary.csv</a>,
<a href="appearances.csv">appearances.csv</a>.</p>
<h2>Timeline</h2>
<img class="timeline" src="timeline.png" alt="timeline: one lane per brand">
<h2>Appearances</h2>
{_appearance_cards(report) or '<p>None.</p>'}
</body>
</html>
"""
