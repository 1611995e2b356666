"""What readers do with a bad record: raise (the default) or, with ``skip_bad=True``, warn and carry on.

Real datasets have a few broken records (Logos-32plus ships images that do not decode, Logos in the Wild has
dead links), so each reader can skip them; the warnings name every file skipped and why.
"""
from __future__ import annotations

import warnings

__all__ = ["DatasetWarning", "reject"]


class DatasetWarning(UserWarning):
    """A record of a dataset was skipped (``skip_bad=True``) or adjusted; the message names the file."""


def reject(error: Exception, skip_bad: bool) -> None:
    """Raise ``error``, or with ``skip_bad`` emit it as a :class:`DatasetWarning` (the caller then skips)."""
    if not skip_bad:
        raise error
    warnings.warn(f"skipped: {error}", DatasetWarning, stacklevel=3)
