"""The report's ``index.html``: one self-contained page (inline CSS, relative image links, no scripts, no CDN).

It reads a ``report_model.Report``; every number on it is a field of the ``ExposureReport`` measured once by
``exposure.measure_exposure`` (the CSV files and the command's printout show the same fields).
"""
from __future__ import annotations

from html import escape
from typing import Iterable, List, Sequence

from .exposure import CENTRE_FRACTION, GATES, SIZE_BAND_LABELS
from .report_model import Report, format_seconds
from .timeline import clock

__all__ = ["render_index"]

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
.heatmaps { display: flex; flex-wrap: wrap; gap: 1.2rem; }
.heat table { width: auto; } .heat td { width: 3.2rem; height: 2.2rem; text-align: center; border: 1px solid #fff; }
.heat caption { font-weight: 600; padding-bottom: .3rem; }
td.thumb img { height: 48px; display: block; }
dl.defs dt { font-weight: 600; margin-top: .4rem; } dl.defs dd { margin-left: 1rem; color: #3b4256; }
"""


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    body = ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    if not body:
        body.append(f'<tr><td colspan="{len(header)}">{empty}</td></tr>')
    return ('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{h}</th>" for h in header)
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></div>")


def _brand_table(report: Report) -> str:
    exposure = report.exposure
    with_value = exposure.settings.rate is not None
    header = ["Brand", "Clear exposure", "Share of runtime", "Share of voice", "Appearances",
              "Mean / median / longest", "Quality index", "Quality-adjusted", *(["Media value"] if with_value else []),
              "Size mean / max", "Position (centre share)", "Solus", "First / last seen", "Ungated",
              "Confidence mean / min / max"]
    rows = []
    for b in exposure.brands:
        value = []
        if with_value:
            currency = exposure.settings.currency
            value = [f"{b.media_value:,.2f}{(' ' + escape(currency)) if currency else ''}"]
        rows.append([
            escape(b.brand), format_seconds(b.clear_seconds), _percent(b.runtime_share), _percent(b.share_of_voice),
            str(b.appearances),
            " / ".join(format_seconds(v) for v in (b.mean_appearance, b.median_appearance, b.longest_appearance)),
            f"{b.quality_index:.2f}", format_seconds(b.quality_seconds), *value,
            f"{_percent(b.mean_size_share)} / {_percent(b.max_size_share)}",
            f"{b.position or '-'} ({_percent(b.centre_share)})", format_seconds(b.solus_seconds),
            f"{clock(b.first_seen)} / {clock(b.last_seen)}", format_seconds(b.ungated_seconds),
            f"{b.confidence_mean:.2f} / {b.confidence_min:.2f} / {b.confidence_max:.2f}"])
    return _table(header, rows, "Nothing was detected.")


def _single_image_table(report: Report) -> str:
    header = ["Brand", "Qualifying", "Size", "Position", "Confidence", "Rejected detections"]
    rows = []
    for b in report.exposure.brands:
        rejected = ", ".join(f"{gate}: {n}" for gate, n in b.rejected) or "-"
        rows.append([escape(b.brand), "yes" if b.qualifying_seconds > 0 else "no",
                     _percent(b.max_size_share), b.position or "-",
                     f"{b.confidence_max:.2f}" if b.detections else "-", rejected])
    return _table(header, rows, "Nothing was detected.")


def _settings_note(report: Report) -> str:
    s = report.exposure.settings
    g = s.gates
    edge = "off" if g.edge_margin is None else f"{g.edge_margin:g} px from the borders"
    sharp = "off" if g.min_sharpness <= 0 else f"Laplacian variance &ge; {g.min_sharpness:g}"
    classes = "all classes" if s.classes is None else ", ".join(
        escape(report.exposure.clip.brand(c)) for c in s.classes)
    w = s.weights
    return (f'<p class="note">Measured with: {classes}; qualifying detection: confidence &ge; '
            f"{g.min_confidence:g}, shorter side &ge; {g.min_side_px:g} px, area &ge; {_percent(g.min_area_share)} "
            f"of the frame, edge gate {edge}, sharpness {sharp}. Gaps of &le; {s.max_gap:g} s are bridged; "
            f"appearances shorter than {s.min_duration:g} s are not counted. Quality index weights: size "
            f"{w.size:g}, position {w.position:g}, clarity {w.clarity:g}, clutter {w.clutter:g}, duration "
            f"{w.duration:g}. Data: <a href=\"summary.csv\">summary.csv</a>, "
            f"<a href=\"appearances.csv\">appearances.csv</a>, <a href=\"rejected.csv\">rejected.csv</a>, "
            f"<a href=\"settings.json\">settings.json</a>.</p>")


_DEFINITIONS = f"""<dl class="defs">
<dt>Clear exposure</dt><dd>The total length of the brand's appearances: runs of frames holding at least one
qualifying detection of it (several at once count once), joined across gaps up to the bridging limit, and
kept when at least the minimum duration.</dd>
<dt>Ungated</dt><dd>Seconds of frames with a detection of the brand at the confidence threshold, before the size,
edge and sharpness gates, bridging and the minimum duration: what a naive count says.</dd>
<dt>Share of voice</dt><dd>Clear exposure / all brands' clear exposure.</dd>
<dt>Size</dt><dd>Union of the brand's boxes as a share of the frame, over its visible frames.</dd>
<dt>Position</dt><dd>3 &times; 3 grid cell of the centre of the brand's largest box; <i>centre</i> when the middle
cell ({CENTRE_FRACTION:.0%} of width and height) holds at least half of its visible time.</dd>
<dt>Solus</dt><dd>Visible seconds with no other brand visible.</dd>
<dt>Quality index</dt><dd>0-1, the weighted mean of size (0.25/0.5/0.75/1 by size band), position (1 middle,
0.7 edge middle, 0.4 corner), clarity (sharpness / reference, at most 1), clutter (1 / brands on screen) and
duration (appearance length / reference, at most 1), averaged over the visible frames; quality-adjusted
seconds = index &times; clear seconds. Media value = quality-adjusted seconds / 30 &times; the price of a
30-second spot, only when one was given.</dd>
</dl>"""


def _size_bands(report: Report) -> str:
    rows = [[escape(b.brand), *(format_seconds(v) for v in b.size_band_seconds)] for b in report.brands
            if b.appearances]
    return _table(["Brand", *(f"size {label}" for label in SIZE_BAND_LABELS)], rows, "No appearances.")


def _heatmaps(report: Report) -> str:
    maps: List[str] = []
    for b in report.brands:
        total = sum(sum(row) for row in b.heatmap_seconds)
        if total <= 0:
            continue
        cells = []
        for row in b.heatmap_seconds:
            tds = []
            for seconds in row:
                share = seconds / total
                ink = "#fff" if share > 0.5 else "#1d2230"
                tds.append(f'<td style="background: rgba(214, 69, 65, {0.08 + 0.92 * share:.3f}); color: {ink}" '
                           f'title="{seconds:.2f} s">{100 * share:.0f}%</td>')
            cells.append("<tr>" + "".join(tds) + "</tr>")
        maps.append(f'<div class="heat"><table><caption>{escape(b.brand)}</caption>{"".join(cells)}</table></div>')
    return f'<div class="heatmaps">{"".join(maps)}</div>' if maps else "<p>No appearances.</p>"


def _clutter(report: Report) -> str:
    exposure = report.exposure
    counts = _table(["Brands visible at once", "0", "1 (solus)", "2", "3 or more"],
                    [["Analysed seconds", *(format_seconds(v) for v in exposure.brands_on_screen_seconds)]], "")
    pairs = _table(["Brands together", "Seconds"],
                   [[f"{escape(a)} + {escape(b)}", format_seconds(s)] for a, b, s in exposure.together_seconds],
                   "No two brands were visible at once.")
    return counts + "<br>" + pairs


def _exposure_log(report: Report) -> str:
    header = ["#", "Brand", "Start", "End", "Duration", "Peak size", "Mean size", "Quality index",
              "Quality-adjusted", "Bridged", "Thumbnail"]
    rows = []
    for a in report.appearances:
        image = (f'<img src="{escape(a.thumbnail)}" alt="{escape(a.brand)} #{a.id}" loading="lazy">'
                 if a.thumbnail else "")
        rows.append([str(a.id), escape(a.brand), clock(a.start), clock(a.end), format_seconds(a.duration),
                     _percent(a.peak_size_share), _percent(a.mean_size_share), f"{a.quality_index:.2f}",
                     format_seconds(a.quality_seconds), format_seconds(a.bridged_seconds), image])
    table = _table(header, rows, "No appearance lasted the minimum duration.")
    return table.replace("<td><img", '<td class="thumb"><img')


def _appearance_cards(report: Report) -> str:
    sections: List[str] = []
    for brand in report.brands:
        cards = []
        for a in (a for a in report.appearances if a.brand == brand.brand):
            image = (f'<img src="{escape(a.thumbnail)}" alt="{escape(a.brand)}, appearance {a.id}" loading="lazy">'
                     if a.thumbnail else "")
            cards.append(f'<div class="card">{image}<div><b>#{a.id}</b> {clock(a.start)} to {clock(a.end)}'
                         f'<br>{format_seconds(a.duration)}, size {_percent(a.mean_size_share)}, '
                         f'QI {a.quality_index:.2f}</div></div>')
        if cards:
            sections.append(f"<h3>{escape(brand.brand)}</h3><div class=\"cards\">{''.join(cards)}</div>")
    return "".join(sections)


def _rejections(report: Report) -> str:
    rows = []
    for b in report.brands:
        counts = dict(b.rejected)
        if counts:
            rows.append([escape(b.brand), *(str(counts.get(gate, 0)) for gate in GATES)])
    return _table(["Brand", *GATES], rows, "No detection was rejected.")


def _truth(report: Report) -> str:
    if report.truth is None:
        return ""
    rows = []
    for b in report.truth.brands:
        relative = f" ({100 * b.relative_error:+.1f}%)" if b.relative_error is not None else ""
        rows.append([escape(b.brand), format_seconds(b.true_seconds), format_seconds(b.measured_seconds),
                     f"{b.error_seconds:+.2f} s{relative}", str(b.true_appearances), str(b.measured_appearances),
                     f"{b.appearance_error:+d}", format_seconds(b.agreeing_seconds), format_seconds(b.false_seconds),
                     format_seconds(b.missed_seconds)])
    header = ["Brand", "True", "Measured", "Error", "True appearances", "Measured appearances",
              "Appearance error", "Agreeing", "False", "Missed"]
    source = f" ({escape(report.truth.source)})" if report.truth.source else ""
    return (f"<h2>Against the annotation{source}</h2>" + _table(header, rows, "The annotation is empty.")
            + '<p class="note">Data: <a href="truth.csv">truth.csv</a>.</p>')


def render_index(report: Report, title: str) -> str:
    width, height = report.frame_size
    warnings = []
    if report.truncated:
        warnings.append('<p class="warning">The video ended before the length its container announces (truncated or '
                        'damaged file): the figures cover only the part that could be decoded.</p>')
    if report.remeasured_from:
        missing = sum(1 for a in report.appearances if not a.thumbnail)
        note = (f"Measured again, without the video, from the per-frame records {escape(report.remeasured_from)} "
                f"(<code>pydarknet video --remeasure</code>).")
        if missing:
            note += (f" {missing} of {len(report.appearances)} appearances have no thumbnail: under these settings "
                     f"their best frame is not one the earlier report kept, and a new one needs the video (run "
                     f"<code>pydarknet video</code> again for them).")
        warnings.append(f'<p class="note">{note}</p>')
    if report.single_frame:
        meta = f"{escape(report.source)} &middot; {width}&times;{height} &middot; a single image: no durations"
        body = f"""<h2>Brands</h2>
{_single_image_table(report)}
{_settings_note(report)}"""
    else:
        meta = (f"{escape(report.source)} &middot; {width}&times;{height} &middot; analysed "
                f"{clock(report.start)} to {clock(report.start + report.runtime)} ({report.runtime:.1f} s, "
                f"{report.frames_processed} frames, one every {report.sample_period * 1000:.0f} ms)")
        body = f"""<h2>Brands</h2>
{_brand_table(report)}
{_settings_note(report)}
{_truth(report)}
<h2>Timeline</h2>
<img class="timeline" src="timeline.png" alt="timeline: one lane per brand">
<h2>Exposure log</h2>
{_exposure_log(report)}
<h2>Size bands</h2>
{_size_bands(report)}
<h2>Position (share of visible time per cell of a 3 &times; 3 grid)</h2>
{_heatmaps(report)}
<h2>Clutter and share of voice</h2>
{_clutter(report)}
<h2>Appearances</h2>
{_appearance_cards(report) or '<p>None.</p>'}
<h2>Rejected detections (first gate failed)</h2>
{_rejections(report)}
<h2>Definitions</h2>
{_DEFINITIONS}"""
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
{''.join(warnings)}
{body}
</body>
</html>
"""
