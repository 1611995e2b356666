"""Where libpydarknet finds OpenBLAS for darknet's CPU gemm (src/pdn_blas.c).

The library looks for the scipy-openblas32 wheel beside its own package, then where its build found it.  A source
checkout's library (pydarknet/_lib, built in an isolated environment) can do neither, so before loading it
_native.py calls locate(), which points $PYDARKNET_BLAS at the wheel of the running Python, if it has one and the
variable is unset.  $PYDARKNET_BLAS=0 keeps darknet's own gemm.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Optional

ENV = "PYDARKNET_BLAS"


def wheel_library() -> Optional[str]:
    """libscipy_openblas.so of the installed scipy-openblas32 wheel (found without importing it), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        spec = importlib.util.find_spec("scipy_openblas32")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "lib", "libscipy_openblas.so")
        if os.path.isfile(path):
            return path
    return None


def locate() -> None:
    if os.environ.get(ENV):
        return
    path = wheel_library()
    if path:
        os.environ[ENV] = path
