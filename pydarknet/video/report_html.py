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
th a { color: inherit; text-decoration: underline dotted; } dl.defs dt:target { background: #fff4d6; }
th small { font-weight: normal; color: #5b6275; }
"""


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _defined(label: str, term: str) -> str:
    """A column header linking to its definition at the foot of the page (``_DEFINITIONS``)."""
    return f'<a href="#def-{term}">{label}</a>'


NONE = "-"     # a value that is not defined (a brand without appearances has no mean size, no quality index)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    body = ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    if not body:
        body.append(f'<tr><td colspan="{len(header)}">{empty}</td></tr>')
    return ('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{h}</th>" for h in header)
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></div>")


def _brand_table(report: Report) -> str:
    exposure = report.exposure
    settings = exposure.settings
    with_value = settings.rate is not None
    header = [_defined("Brand", "brand"), _defined("Clear exposure", "clear"),
              _defined("Share of runtime", "runtime-share"), _defined("Share of voice", "share-of-voice"),
              _defined(f"Appearances (&ge; {settings.min_duration:g} s)", "appearance"),
              _defined("Mean / median / longest", "appearance-lengths"),
              _defined("Quality index (0-1)", "quality-index"), _defined("Quality-adjusted", "quality-adjusted"),
              *([_defined(f"Media value ({_rate(settings)})", "media-value")] if with_value else []),
              _defined("Size mean / max (share of frame)", "size"), _defined("Position (centre share)", "position"),
              _defined("Solus", "solus"), _defined("First / last seen", "seen"), _defined("Ungated", "ungated"),
              _defined("Confidence mean / min / max", "confidence")]
    rows = []
    for b in exposure.brands:
        shown = b.appearances > 0     # without an appearance, the per-appearance figures are not defined
        value = []
        if with_value:
            value = [f"{b.media_value:,.2f}{(' ' + escape(settings.currency)) if settings.currency else ''}"]
        rows.append([
            escape(b.brand), format_seconds(b.clear_seconds), _percent(b.runtime_share), _percent(b.share_of_voice),
            str(b.appearances),
            " / ".join(format_seconds(v) for v in (b.mean_appearance, b.median_appearance, b.longest_appearance))
            if shown else NONE,
            f"{b.quality_index:.2f}" if shown else NONE, format_seconds(b.quality_seconds), *value,
            f"{_percent(b.mean_size_share)} / {_percent(b.max_size_share)}" if shown else NONE,
            f"{b.position} ({_percent(b.centre_share)})" if shown else NONE, format_seconds(b.solus_seconds),
            f"{clock(b.first_seen)} / {clock(b.last_seen)}", format_seconds(b.ungated_seconds),
            f"{b.confidence_mean:.2f} / {b.confidence_min:.2f} / {b.confidence_max:.2f}" if shown else NONE])
    return _table(header, rows, "Nothing was detected.")


def _rate(settings) -> str:
    currency = f" {escape(settings.currency)}" if settings.currency else ""
    return f"at {settings.rate:,.2f}{currency} per 30-second spot"


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
    value = f" Media value {_rate(s)}." if s.rate is not None else " No media value: no spot rate was given."
    return (f'<p class="note">Measured with: {classes}; qualifying detection: confidence &ge; '
            f"{g.min_confidence:g}, shorter side &ge; {g.min_side_px:g} px, area &ge; {_percent(g.min_area_share)} "
            f"of the frame, edge gate {edge}, sharpness {sharp}. Gaps of &le; {s.max_gap:g} s are bridged; "
            f"appearances shorter than {s.min_duration:g} s are not counted. Quality index weights: size "
            f"{w.size:g}, position {w.position:g}, clarity {w.clarity:g} (sharpness {s.sharpness_reference:g} "
            f"scores 1), clutter {w.clutter:g}, duration {w.duration:g} ({s.duration_reference:g} s scores 1)."
            f"{value} Durations are seconds (s) or minutes:seconds; times are on the video's timeline. "
            f"Data: <a href=\"summary.csv\">summary.csv</a>, "
            f"<a href=\"appearances.csv\">appearances.csv</a>, <a href=\"rejected.csv\">rejected.csv</a>, "
            f"<a href=\"settings.json\">settings.json</a>.</p>")


_DEFINITIONS = [  # (anchor, term, definition): the same as docs/video.md, "Exposure metrics"
    ("brand", "Brand", "A class of the detector (a logo, or with a COCO model an object class)."),
    ("qualifying", "Qualifying detection", "A detection that passes every gate of the settings above, in this "
     "order: confidence, shorter side in pixels, area as a share of the frame, distance from the frame's borders "
     "(a logo cut off by the frame is not legible), sharpness (variance of the Laplacian of the box; a blurred "
     "logo is not legible)."),
    ("appearance", "Appearance", "A run of frames holding at least one qualifying detection of the brand "
     "(several at once count once), joined across gaps up to the bridging limit, counted when it lasts at least "
     "the minimum duration (shorter runs are flicker). Start = its first frame's time; end = its last frame's "
     "time + one frame."),
    ("clear", "Clear exposure", "The total length of the brand's appearances, bridged gaps included (seconds)."),
    ("runtime-share", "Share of runtime", "Clear exposure / analysed time."),
    ("share-of-voice", "Share of voice", "Clear exposure / all brands' clear exposure."),
    ("appearance-lengths", "Mean / median / longest", "Of the brand's appearance durations (seconds)."),
    ("quality-index", "Quality index", "0-1, the weighted mean of size (0.25 / 0.5 / 0.75 / 1 by size band), "
     "position (1 middle cell, 0.7 middle of an edge, 0.4 corner), clarity (sharpness / reference, at most 1), "
     "clutter (1 / brands visible) and duration (appearance length / reference, at most 1), per visible frame, "
     "averaged over the appearance; a brand's is its quality-adjusted seconds / clear exposure. "
     "<i>-</i>: no appearance."),
    ("quality-adjusted", "Quality-adjusted", "Quality index &times; duration, summed over the appearances "
     "(seconds)."),
    ("media-value", "Media value", "Quality-adjusted seconds / 30 &times; the price of a 30-second spot; only when "
     "a price was given."),
    ("size", "Size", "Area of the union of the brand's qualifying boxes / frame area, over its visible frames "
     "(qualifying frames inside its appearances), weighted by time: mean and maximum (peak)."),
    ("size-bands", "Size bands", "Seconds of visible frames by size: below 2.5%, 2.5-5%, 5-10%, 10% of the frame "
     "or more."),
    ("position", "Position", f"The 3 &times; 3 grid cell holding the centre of the brand's largest box; "
     f"<i>centre</i> when the middle cell ({CENTRE_FRACTION:.0%} of the width and height) holds at least half "
     f"of its visible time, else <i>edge</i>; in brackets, that share (centre share)."),
    ("solus", "Solus", "Visible seconds with no other brand visible."),
    ("seen", "First / last seen", "Start of the first appearance; time of the last visible frame "
     "(minutes:seconds on the video's timeline; without an appearance, of the first and last qualifying or "
     "detected frame)."),
    ("ungated", "Ungated", "Seconds of frames with a detection of the brand at the confidence threshold, before "
     "the other gates, bridging and the minimum duration: what a naive count says. It can be below clear "
     "exposure, which includes bridged gaps."),
    ("confidence", "Confidence", "The detector's confidence of the qualifying detections in visible frames: "
     "mean, minimum and maximum. <i>-</i>: no appearance."),
    ("bridged", "Bridged", "Seconds of an appearance in gaps without a qualifying detection (the logo was "
     "missed or rejected for at most the bridging limit)."),
    ("clutter", "Clutter", "Brands visible in the same frame: analysed seconds with 0, 1 (solus), 2 and 3 or "
     "more; and per pair of brands, their seconds together."),
    ("rejected", "Rejected detections", "Detections that failed a gate, counted by the first gate they failed "
     "(every one is listed, with its measurement and the limit, in rejected.csv)."),
]


def _definitions() -> str:
    terms = "".join(f'<dt id="def-{anchor}">{term}</dt><dd>{text}</dd>' for anchor, term, text in _DEFINITIONS)
    return (f'<dl class="defs">{terms}</dl><p class="note">The same definitions, with the reasons for them, are '
            f'in the pydarknet documentation (docs/video.md, section "Exposure metrics").</p>')


def _size_bands(report: Report) -> str:
    rows = [[escape(b.brand), *(format_seconds(v) for v in b.size_band_seconds)] for b in report.brands
            if b.appearances]
    return _table([_defined("Brand", "brand"), *(_defined(f"size {escape(label)} of the frame", "size-bands")
                                                 for label in SIZE_BAND_LABELS)], rows, "No appearances.")


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
    counts = _table([_defined("Brands visible at once", "clutter"), "0", _defined("1 (solus)", "solus"), "2",
                     "3 or more"],
                    [["Analysed seconds", *(format_seconds(v) for v in exposure.brands_on_screen_seconds)]], "")
    pairs = _table([_defined("Brands together", "clutter"), "Seconds"],
                   [[f"{escape(a)} + {escape(b)}", format_seconds(s)] for a, b, s in exposure.together_seconds],
                   "No two brands were visible at once.")
    return counts + "<br>" + pairs


def _exposure_log(report: Report) -> str:
    header = ["#", _defined("Brand", "brand"), _defined("Start", "appearance"), _defined("End", "appearance"),
              "Duration", _defined("Peak size (share of frame)", "size"), _defined("Mean size", "size"),
              _defined("Quality index (0-1)", "quality-index"), _defined("Quality-adjusted", "quality-adjusted"),
              _defined("Bridged", "bridged"), "Thumbnail (best frame)"]
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
    return _table([_defined("Brand", "brand"), *_gate_headers(report.exposure.settings.gates)], rows,
                  "No detection was rejected.")


def _gate_headers(g) -> List[str]:
    """Each gate's column: what failing it means, with the limit of these settings."""
    edge = "off" if g.edge_margin is None else f"within {g.edge_margin:g} px of a border"
    sharp = "off" if g.min_sharpness <= 0 else f"sharpness &lt; {g.min_sharpness:g}"
    described = {"confidence": f"confidence &lt; {g.min_confidence:g}", "size_px": f"shorter side &lt; "
                 f"{g.min_side_px:g} px", "size_share": f"area &lt; {_percent(g.min_area_share)} of the frame",
                 "edge": edge, "sharpness": sharp}
    return [f"{described[gate]}<br><small>({gate})</small>" for gate in GATES]   # the gate as rejected.csv names it


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
<h2>Size bands (seconds visible, by share of the frame's area)</h2>
{_size_bands(report)}
<h2>Position (share of visible time per cell of a 3 &times; 3 grid)</h2>
{_heatmaps(report)}
<h2>Clutter (brands on screen together)</h2>
{_clutter(report)}
<h2>Appearances</h2>
{_appearance_cards(report) or '<p>None.</p>'}
<h2>Rejected detections (number of detections, by the first gate failed)</h2>
{_rejections(report)}
<h2 id="definitions">Definitions</h2>
{_definitions()}"""
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
