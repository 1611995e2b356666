"""Exceptions of the catalogue tools (``DarknetError`` subclasses, so ``except DarknetError`` works)."""
from __future__ import annotations

from ..errors import DarknetError


class CatalogError(DarknetError):
    """A catalogue run cannot go on: no videos, an unusable output folder, workers that cannot start."""


class MergeError(CatalogError):
    """Segment results of one video that do not tile its frames exactly (an overlap or a gap): refused rather than
    counting frames twice or losing them."""
