"""Catalogue: the placement analysis of many videos (seasons, broadcasts) on a local pool or a Ray cluster.

* ``api``            ``analyze_catalog``: list, skip finished, segment, run, merge, report (what ``pydarknet
                     catalog`` runs)
* ``segments``       frame-exact segments of a long video, and reading one
* ``worker``         ``SegmentWorker``: one Detector, segment task -> per-frame records (``FrameRecord``s,
                     sharpness measured from the pixels)
* ``local_pool``     worker processes on this machine that survive a worker dying
* ``ray_pool``       the same on Ray (optional: ``pip install "pydarknet[ray]"``)
* ``records``/``merge``  per-frame records in columns and their exact, once-only merge across segments
* ``video_report``   the one adapter from merged records to a video's report and numbers (``measure_exposure``
                     and ``pydarknet video``'s report writer)
* ``finishing``      merge + measure + report per video, in processes beside the driver (or in it)
* ``settings``       the detection settings and the two hashes (detection, exposure) that decide what a rerun redoes
* ``store``          the output folder and the manifest that makes reruns skip finished videos
* ``catalog_report`` catalog.html, catalog.csv, detections.parquet
* ``sample_videos``  clips of darknet's sample photos panning by, for tests and the benchmark
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

# public name -> module defining it, imported on first access (PEP 562): `pydarknet catalog --help` needs no
# OpenCV, scipy or native library
_LAZY = {
    "analyze_catalog": ".api", "CatalogResult": ".api", "DEFAULT_SEGMENT_SECONDS": ".api",
    "CatalogError": ".errors", "MergeError": ".errors", "PoolEvent": ".events", "FrameRecords": ".records",
    "Segment": ".segments", "plan_segments": ".segments",
}

if TYPE_CHECKING:   # what type checkers and IDEs see
    from .api import DEFAULT_SEGMENT_SECONDS, CatalogResult, analyze_catalog  # noqa: F401
    from .errors import CatalogError, MergeError  # noqa: F401
    from .events import PoolEvent  # noqa: F401
    from .records import FrameRecords  # noqa: F401
    from .segments import Segment, plan_segments  # noqa: F401

__all__ = ["analyze_catalog", "CatalogResult", "CatalogError", "MergeError", "PoolEvent", "FrameRecords",
           "Segment", "plan_segments", "DEFAULT_SEGMENT_SECONDS"]


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
