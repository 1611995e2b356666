"""Atomic outputs of the video tools (pydarknet.atomic, failing with VideoOutputError)."""
from __future__ import annotations

from .. import atomic
from ..atomic import PathLike  # noqa: F401  (re-exported for the video modules)
from .errors import VideoOutputError


class AtomicFile(atomic.AtomicFile):
    error = VideoOutputError


class AtomicFolder(atomic.AtomicFolder):
    error = VideoOutputError
