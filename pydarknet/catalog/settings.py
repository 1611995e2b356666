"""What a catalogue run analyses with, and the fingerprints that decide whether an earlier result still holds.

There are two stages, each with its own hash, so that changing how the numbers are measured does not run the
network again:

* **Detection** (``CatalogSettings``: everything a worker needs to build its ``Detector`` and read its segments;
  it is pickled to local worker processes and Ray actors).  ``settings_hash`` covers what changes the per-frame
  records: the model files' bytes (cfg, weights, names), the threshold (the network runs at half of it), NMS,
  letterboxing, the stride and the records' format version.  It leaves out what only changes the speed:
  workers, device, batch size, segment length (a segmented run gives exactly the unsegmented records, see
  ``merge.py``).  A video's stored records are reused when its path, size and modification time and this hash
  are unchanged.
* **Measurement** (``ExposureSettings``: gates, classes, max gap, minimum duration, weights, rate).
  ``exposure_hash`` covers them and the report's format version: a video's report is reused when, besides, this
  hash is unchanged; when only it changed, the report is measured again from the stored records.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Optional

from ..video.analyze import detector_threshold
from ..video.exposure import ExposureSettings

__all__ = ["CatalogSettings", "RESULT_FORMAT", "REPORT_FORMAT", "file_sha256", "exposure_hash"]

# bump when the stored per-frame records change meaning: older records are then detected again
RESULT_FORMAT = 2
# bump when the per-video report or summary changes meaning: older reports are then measured again
REPORT_FORMAT = 1


def file_sha256(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CatalogSettings:
    cfg: str
    weights: str
    names: Optional[str] = None
    data: Optional[str] = None
    thresh: float = 0.25           # confidence that starts an appearance (as `pydarknet video --thresh`)
    nms: float = 0.45
    letterbox: Optional[bool] = None
    stride: int = 1
    batch_size: int = 1
    device: Optional[str] = None   # None: GPU i % count for local worker i where GPUs exist, else the CPU

    def __post_init__(self):
        if not 0 < self.thresh < 1:
            raise ValueError(f"thresh (the confidence that starts an appearance) must be between 0 and 1, "
                             f"not {self.thresh}")
        if int(self.stride) != self.stride or self.stride < 1:
            raise ValueError(f"stride must be a whole number >= 1, got {self.stride!r}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {self.batch_size!r}")
        for role in ("cfg", "weights", "names", "data"):
            value = getattr(self, role)
            # absolute, so worker processes and Ray actors started elsewhere find the same files; "coco" (a
            # built-in names list) and a missing file stay as given (the Detector names the missing file)
            if value is not None and os.path.exists(value):
                object.__setattr__(self, role, os.path.abspath(os.fspath(value)))

    @property
    def detector_thresh(self) -> float:
        """What the network runs at: low enough for the tracker's second association (as ``pydarknet video``)."""
        return detector_threshold(self.thresh)

    def open_detector(self, device=None):
        """A ``Detector`` for these settings on ``device`` (default: ``self.device``)."""
        from ..detector import Detector

        return Detector(self.cfg, self.weights, names=self.names, data=self.data, batch_size=self.batch_size,
                        device=device if device is not None else self.device, thresh=self.detector_thresh,
                        nms=self.nms, letterbox=self.letterbox)

    def settings_hash(self) -> str:
        """A short hash of what changes the per-frame records (see the module docstring)."""
        files = {}
        for role in ("cfg", "weights", "names", "data"):
            value = getattr(self, role)
            if value is not None and os.path.isfile(value):
                files[role] = file_sha256(value)
            elif value is not None:
                files[role] = str(value)   # a built-in names list ("coco")
        numbers = {k: v for k, v in asdict(self).items() if k in ("thresh", "nms", "letterbox", "stride")}
        text = json.dumps({"files": files, "numbers": numbers, "format": RESULT_FORMAT}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def exposure_hash(settings: ExposureSettings) -> str:
    """A short hash of what changes a video's numbers and report, given its records (see the module docstring)."""
    text = json.dumps({"exposure": settings.to_dict(), "format": REPORT_FORMAT}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
