"""Exceptions and warnings of the video tools (all ``DarknetError`` subclasses, so ``except DarknetError`` works)."""
from __future__ import annotations

from ..errors import DarknetError


class VideoSourceError(DarknetError, ValueError):
    """A video file, camera or image folder is missing, unreadable, empty, or asked for a range it does not have."""


class VideoOutputError(DarknetError, OSError):
    """An output (annotated video, detections file, report folder) cannot be written where it was asked for."""


class TruncatedVideoWarning(UserWarning):
    """The video ended before the frame count its container announced: the frames it had were still processed."""


class TruthFileError(DarknetError, ValueError):
    """A ground-truth annotation file (``--truth``: brand, start, end per row) is missing or malformed."""


class FrameRecordsError(DarknetError, ValueError):
    """A report's per-frame records (``frames.jsonl.gz``, read by ``--remeasure``) are missing, truncated or
    malformed."""
