"""Video: run a detector over movies, episodes, cameras and image folders; track, write, report.

* ``source``      frames with timestamps from files, cameras and image folders (``open_source``)
* ``pipeline``    ``detect_video``: decoding in a reader thread overlapped with batched detection
* ``tracking``    ``Tracker``: IoU + motion association (SORT/ByteTrack style) into ``Appearance``s
* ``writers``     annotated video, JSON lines, CSV, COCO JSON (all written atomically)
* ``report``      the product-placement report (``ReportBuilder``), with ``timeline`` and ``report_html``
* ``analyze``     ``analyze_video``: all of the above in one call (what ``pydarknet video`` runs)
* ``sample_clip`` clips with known placements, for tests and the demo
"""
