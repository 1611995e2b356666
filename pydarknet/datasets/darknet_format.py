"""darknet's file formats, for the dataset tools: they live in :mod:`pydarknet.darknet_files`, the one module
that reads and writes them (core modules use it without importing ``pydarknet.datasets``)."""
from __future__ import annotations

from ..darknet_files import *  # noqa: F401,F403
from ..darknet_files import __all__  # noqa: F401
