"""Exceptions raised by pydarknet.

Everything darknet itself would answer with ``exit()`` (and so kill the interpreter) reaches Python as one of
these instead.  Each carries the file it is about (``path``) and, where darknet said something, darknet's own
words (``darknet_message``).
"""
from __future__ import annotations

import os
from typing import Optional, Union

from ._typing import PathLike


class DarknetError(RuntimeError):
    """Base class of every error pydarknet raises on purpose."""

    def __init__(self, message: str, path: Optional[Union[PathLike, bytes]] = None, darknet_message: str = ""):
        # bytes: a path darknet handed back undecoded; shown as the file system would decode it
        self.path: Optional[str] = os.fsdecode(path) if path is not None else None
        self.darknet_message = darknet_message.strip()
        text = message
        if self.path and self.path not in message:
            text = f"{self.path}: {message}"
        if self.darknet_message and self.darknet_message not in text:
            text = f"{text}\n  darknet said: {self.darknet_message}"
        super().__init__(text)


class ConfigError(DarknetError, ValueError):
    """A network .cfg or .data file is missing, malformed or inconsistent."""


class WeightsError(DarknetError, ValueError):
    """A .weights file is missing, truncated or does not match its cfg."""


class NamesError(DarknetError, ValueError):
    """A .names file is missing or does not match the network's classes."""


class ImageError(DarknetError, ValueError):
    """An image (file or array) that cannot be used: not decodable, or too large."""


class DatasetError(DarknetError, ValueError):
    """A dataset (annotations, image lists, label files) is missing or malformed."""


class NativeLibraryError(DarknetError, ImportError):
    """The compiled library is missing, cannot be loaded, or was built for another version."""


class CudaError(DarknetError):
    """A CUDA or cuDNN call failed, or a GPU was asked for that the build or machine does not have."""


class TrainingError(DarknetError):
    """Training stopped abnormally (the child process crashed, exited early, or was given bad input)."""


class BackendUnavailable(DarknetError):
    """The OpenCV backend cannot run this network here (no OpenCV 4.x, unsupported layers, a GPU detector...)."""
