"""Type aliases shared by the package (one definition, imported everywhere)."""
from __future__ import annotations

import os
from typing import Union

# a file system path as the package's functions accept it: str or any os.PathLike (pathlib.Path, ...)
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["PathLike"]
