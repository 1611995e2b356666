"""The catalogue report: a brand x title table of clear exposure with totals, a timeline per title, and every
detection in one table for the user's own analysis.  Every number comes from each video's ``ExposureReport``
(``measure_exposure``, see ``pydarknet.video.exposure`` for the definitions), kept as its ``VideoSummary``.

* ``catalog.csv``: one row per (title, brand): clear seconds, share of the title's analysed runtime, appearances,
  quality index, quality-adjusted seconds, media value (empty without a rate), seconds detected before the
  gates, qualifying detections; a title where nothing was seen has one row with an empty brand.
* ``catalog.html``: opens offline (inline CSS and SVG, no script): totals per brand, the brand x title table
  (titles as rows: a catalogue has more titles than brands), a timeline per title (one lane per brand, a bar per
  appearance, drawn as inline SVG), links to each title's own report, and the videos that failed, with why.
* ``detections.parquet``: one row per detection of every finished video, as the network reported it (down to
  half the threshold): video (title), path, frame, time, class_id, class, confidence, x1, y1, x2, y2, sharpness
  (NaN: not measured), qualified (it passed every gate of the run's exposure settings), gate (the first gate it
  failed: confidence, size_px, size_share, edge, sharpness; "classes" for a class left out by ``classes``; ""
  when it qualified).  Needs ``pyarrow`` (``pip install "pydarknet[catalog]"``); without it the same table is
  written as ``detections.csv.gz`` and a warning says so.

All files are written atomically; the folder's earlier catalogue report stays until the new one is complete.
"""
from __future__ import annotations

import csv
import gzip
import html
import io
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..atomic import AtomicFile, atomic_write_bytes
from ..detections import class_color
from ..video.exposure import GATES, ExposureSettings, apply_gates
from ..video.timeline import clock, time_ticks
from .errors import CatalogError
from .video_report import VideoSummary

__all__ = ["brand_totals", "write_catalog_csv", "write_catalog_html", "write_detections", "DETECTION_COLUMNS"]

DETECTION_COLUMNS = ("video", "path", "frame", "time", "class_id", "class", "confidence", "x1", "y1", "x2", "y2",
                     "sharpness", "qualified", "gate")
CATALOG_FIELDS = ("title", "path", "runtime_seconds", "brand", "class_id", "clear_seconds", "runtime_share",
                  "appearances", "quality_index", "quality_seconds", "media_value", "ungated_seconds", "detections")
NOT_MEASURED = "classes"   # the gate column of a class left out by the settings' classes


def brand_totals(summaries: Sequence[VideoSummary]) -> Dict[str, Dict[str, float]]:
    """brand -> {clear_seconds, appearances, quality_seconds, quality_index (None without clear exposure: undefined),
    media_value (None without a rate), detections, titles (those where it has clear exposure)} over all videos,
    most clear seconds first."""
    totals: Dict[str, Dict] = {}
    for summary in summaries:
        for b in summary.brands:
            t = totals.setdefault(b["brand"], {"clear_seconds": 0.0, "appearances": 0, "quality_seconds": 0.0,
                                               "quality_index": 0.0, "media_value": None, "detections": 0,
                                               "titles": 0})
            t["clear_seconds"] += b["clear_seconds"]
            t["appearances"] += b["appearances"]
            t["quality_seconds"] += b["quality_seconds"]
            t["detections"] += b["detections"]
            t["titles"] += 1 if b["clear_seconds"] > 0 else 0
            if b["media_value"] is not None:
                t["media_value"] = (t["media_value"] or 0.0) + b["media_value"]
    for t in totals.values():
        t["quality_index"] = t["quality_seconds"] / t["clear_seconds"] if t["clear_seconds"] > 0 else None
    return dict(sorted(totals.items(), key=lambda item: (-item[1]["clear_seconds"], item[0])))


def _index(value) -> str:
    """A quality index for the page: "-" where it is undefined (no clear exposure)."""
    return "-" if value is None else f"{value:.2f}"


def _csv_value(value):
    return "" if value is None else round(value, 6) if isinstance(value, float) else value


def write_catalog_csv(path: Path, summaries: Sequence[VideoSummary]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CATALOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    for s in summaries:
        for b in s.brands or ({"brand": ""},):
            row = {"title": s.title, "path": s.path, "runtime_seconds": s.runtime}
            row.update({name: b.get(name, "") for name in CATALOG_FIELDS[3:]})
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"), CatalogError)


# -- HTML ---------------------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}td.t,th.t{text-align:left}tr.total td{font-weight:bold;background:#fafafa}
td.z{color:#bbb}.timeline{margin:.2em 0 1.2em}.failed{color:#a00}h2{margin-top:1.6em}
.legend span{display:inline-block;margin-right:1em}.sw{display:inline-block;width:.9em;height:.9em;
vertical-align:middle;margin-right:.3em;border:1px solid #333}
"""


def _rgb(class_id: int) -> str:
    b, g, r = class_color(int(class_id))
    return f"#{r:02x}{g:02x}{b:02x}"


def _timeline_svg(summary: VideoSummary, brands: List[Tuple[str, int]], width: int = 900, lane: int = 14) -> str:
    """One lane per brand seen in this title, a bar per appearance, over the title's analysed runtime."""
    mine = [(name, cid) for name, cid in brands if any(a["brand"] == name for a in summary.appearances)]
    if not mine:
        return '<p class="timeline">nothing on screen</p>'
    label, span = 120, max(summary.runtime, 1e-3)
    plot = width - label - 10
    start = 0.0   # a catalogue analyses whole videos
    height = lane * len(mine) + 18
    parts = [f'<svg class="timeline" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
             f'role="img" aria-label="timeline of {html.escape(summary.title)}">']
    for row, (name, class_id) in enumerate(mine):
        y = row * lane
        parts.append(f'<text x="{label - 6}" y="{y + lane - 3}" font-size="11" text-anchor="end">'
                     f'{html.escape(name)}</text>')
        parts.append(f'<rect x="{label}" y="{y + 1}" width="{plot}" height="{lane - 2}" fill="#f4f4f4"/>')
        for a in summary.appearances:
            if a["brand"] != name:
                continue
            x = label + plot * (a["start"] - start) / span
            w = max(1.0, plot * (a["end"] - a["start"]) / span)
            parts.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{lane - 4}" '
                         f'fill="{_rgb(class_id)}" stroke="#333" stroke-width="0.4">'
                         f'<title>{html.escape(name)} {clock(a["start"])}-{clock(a["end"])}</title></rect>')
    axis_y = lane * len(mine) + 12
    for tick, text in zip(*time_ticks(start, start + span)):   # round steps, every label different
        x = label + plot * (tick - start) / span
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" font-size="10" text-anchor="middle">{text}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write_catalog_html(path: Path, summaries: Sequence[VideoSummary], failed: Dict[str, str],
                       title: str = "Catalogue: product placement", notes: Sequence[str] = ()) -> None:
    totals = brand_totals(summaries)
    class_ids: Dict[str, int] = {}
    for s in summaries:
        for b in s.brands:
            class_ids.setdefault(b["brand"], b["class_id"])
    brands = [(name, class_ids[name]) for name in totals]
    runtime = sum(s.runtime for s in summaries)
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
           f"</head><body><h1>{e(title)}</h1>",
           f"<p>{len(summaries)} video(s) analysed, {clock(runtime, 0)} of analysed runtime; "
           f"{len(totals)} brand(s) seen; {len(failed)} video(s) failed.</p>"]
    out.extend(f"<p>{e(note)}</p>" for note in notes)
    # brand totals
    valued = any(t["media_value"] is not None for t in totals.values())
    currency = next((s.currency for s in summaries if s.currency), "")
    out.append("<h2>Totals per brand</h2><table><tr><th class='t'>brand</th><th>clear exposure</th>"
               "<th>share of all runtime</th><th>appearances</th><th>quality index</th><th>quality-adjusted</th>"
               + (f"<th>media value{(' (' + e(currency) + ')') if currency else ''}</th>" if valued else "")
               + "<th>titles</th><th>qualifying detections</th></tr>")
    for name, t in totals.items():
        share = t["clear_seconds"] / runtime if runtime > 0 else 0.0
        value = (f"<td>{t['media_value']:,.2f}</td>" if t["media_value"] is not None else "<td>-</td>") \
            if valued else ""
        out.append(f"<tr><td class='t'><span class='sw' style='background:{_rgb(class_ids[name])}'></span>"
                   f"{e(name)}</td><td>{clock(t['clear_seconds'])}</td><td>{100 * share:.2f}%</td>"
                   f"<td>{int(t['appearances'])}</td><td>{_index(t['quality_index'])}</td>"
                   f"<td>{clock(t['quality_seconds'])}</td>{value}<td>{int(t['titles'])}</td>"
                   f"<td>{int(t['detections'])}</td></tr>")
    out.append("</table>")
    # brand x title
    out.append("<h2>Clear exposure, brand x title</h2><p>Each cell: clear seconds (quality index).</p><table><tr>"
               "<th class='t'>title</th><th>runtime</th>")
    out.extend(f"<th>{e(name)}</th>" for name, _ in brands)
    out.append("<th>all brands</th></tr>")
    for s in summaries:
        mine = {b["brand"]: b for b in s.brands}
        link = f"videos/{s.title}/index.html"
        out.append(f"<tr><td class='t'><a href='{e(link, quote=True)}'>{e(s.title)}</a>"
                   f"{' (truncated)' if s.truncated else ''}</td><td>{clock(s.runtime)}</td>")
        for name, _ in brands:
            cell = mine.get(name)
            out.append("<td class='z'>-</td>" if cell is None or cell["clear_seconds"] == 0 else
                       f"<td>{clock(cell['clear_seconds'])} ({cell['quality_index']:.2f})</td>")
        out.append(f"<td>{clock(sum(b['clear_seconds'] for b in s.brands))}</td></tr>")
    out.append(f"<tr class='total'><td class='t'>total</td><td>{clock(runtime)}</td>")
    out.extend(f"<td>{clock(totals[name]['clear_seconds'])}"
               + (f" ({totals[name]['quality_index']:.2f})" if totals[name]["quality_index"] is not None else "")
               + "</td>" for name, _ in brands)
    out.append(f"<td>{clock(sum(t['clear_seconds'] for t in totals.values()))}</td></tr></table>")
    out.append("<p>Clear exposure: the seconds of a brand's appearances, runs of frames where it passed every gate "
               "(confidence, size, edge, sharpness), short misses bridged, runs shorter than the minimum duration "
               "left out; the quality index (0-1) weighs size, position, clarity, clutter and duration "
               "(definitions: each title's report and docs/video.md).  \"all brands\" adds the brands up (two "
               "brands on screen at once count twice there).</p>")
    # timelines
    out.append("<h2>Timelines</h2><p class='legend'>")
    out.extend(f"<span><span class='sw' style='background:{_rgb(cid)}'></span>{e(name)}</span>" for name, cid in brands)
    out.append("</p>")
    for s in summaries:
        out.append(f"<h3>{e(s.title)} <small>({clock(s.runtime)})</small></h3>{_timeline_svg(s, brands)}")
    if failed:
        out.append("<h2 class='failed'>Failed videos</h2><table><tr><th class='t'>title</th>"
                   "<th class='t'>why</th></tr>")
        out.extend(f"<tr><td class='t'>{e(t)}</td><td class='t'>{e(why)}</td></tr>" for t, why in failed.items())
        out.append("</table>")
    out.append("</body></html>\n")
    atomic_write_bytes(path, "".join(out).encode("utf-8"), CatalogError)


# -- every detection ----------------------------------------------------------------------------------------------
def detection_gates(records, settings: ExposureSettings) -> np.ndarray:
    """Per detection row of ``records``: the index into ``GATES`` of the first gate it fails under ``settings``
    (-1: it qualifies; ``len(GATES)``: its class is not measured), as ``measure_exposure`` decides it."""
    failed, _, _ = apply_gates(records.confidence, records.xyxy, records.sharpness, records.frame_size, settings.gates)
    if settings.classes is not None:
        failed = np.where(np.isin(records.class_id, settings.classes), failed, len(GATES))
    return failed


def _detection_columns(title: str, path: str, stored, settings: ExposureSettings) -> Dict:
    records, class_names = stored.records, stored.clip.class_names
    names = np.array(list(class_names) or [""], dtype=object)
    class_id = records.class_id.astype(np.int64)
    known = (class_id >= 0) & (class_id < len(class_names))
    failed = detection_gates(records, settings)
    gate_names = np.array(list(GATES) + [NOT_MEASURED, ""], dtype=object)   # index -1 is ""
    return {"video": np.full(records.detection_count, title, dtype=object),
            "path": np.full(records.detection_count, path, dtype=object),
            "frame": records.detection_frame, "time": records.detection_time, "class_id": class_id,
            "class": np.where(known, names[np.clip(class_id, 0, len(names) - 1)], class_id.astype(str)),
            "confidence": records.confidence, "x1": records.xyxy[:, 0], "y1": records.xyxy[:, 1],
            "x2": records.xyxy[:, 2], "y2": records.xyxy[:, 3], "sharpness": records.sharpness,
            "qualified": failed < 0, "gate": gate_names[failed]}


def write_detections(root: Path, videos, settings: ExposureSettings, prefer: str = "parquet") -> Path:
    """Write every detection of ``videos`` (``(title, path, load)`` triples, ``load()`` returning the video's
    ``StoredRecords``), with its gate outcome under ``settings``, to ``root/detections.parquet``, one row group per
    video, or to ``detections.csv.gz`` when pyarrow is missing or ``prefer="csv"``.  Returns the path written."""
    if prefer != "parquet":
        return _write_detections_csv(root / "detections.csv.gz", videos, settings)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        warnings.warn("pyarrow is not installed, so the detections are written as detections.csv.gz instead of "
                      "detections.parquet (pip install \"pydarknet[catalog]\" for Parquet)", stacklevel=2)
        return _write_detections_csv(root / "detections.csv.gz", videos, settings)
    target = root / "detections.parquet"
    schema = pa.schema([("video", pa.string()), ("path", pa.string()), ("frame", pa.int64()),
                        ("time", pa.float64()), ("class_id", pa.int64()), ("class", pa.string()),
                        ("confidence", pa.float64()), ("x1", pa.float64()), ("y1", pa.float64()),
                        ("x2", pa.float64()), ("y2", pa.float64()), ("sharpness", pa.float64()),
                        ("qualified", pa.bool_()), ("gate", pa.string())])
    with AtomicFile(target, CatalogError) as out:
        writer = pq.ParquetWriter(str(out.temp_path), schema)
        try:
            for title, path, load in videos:
                columns = _detection_columns(title, path, load(), settings)
                writer.write_table(pa.table({name: columns[name] for name in DETECTION_COLUMNS}, schema=schema))
        finally:
            writer.close()
    return target


def _write_detections_csv(target: Path, videos, settings: ExposureSettings) -> Path:
    with AtomicFile(target, CatalogError) as out:
        with gzip.open(out.temp_path, "wt", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(DETECTION_COLUMNS)
            for title, path, load in videos:
                columns = _detection_columns(title, path, load(), settings)
                for row in zip(*(columns[name].tolist() for name in DETECTION_COLUMNS)):
                    writer.writerow(row)
    return target
