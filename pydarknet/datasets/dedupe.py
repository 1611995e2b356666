"""Finding images with identical content, so copies never straddle the train/valid split.

The same photo recurs across Logos in the Wild brand folders and across datasets (OpenLogo contains
FlickrLogos-32, Logos-32plus and LitW).  Only files whose byte size collides with another file's are hashed:
identical content implies identical size, and most sizes are unique, so a big dataset costs a ``stat`` per file.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

__all__ = ["sha1_of_file", "sha1_of_bytes", "group_identical_files"]

_CHUNK = 1 << 20


def sha1_of_file(path: Union[str, os.PathLike]) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha1_of_bytes(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def group_identical_files(paths: Sequence[Union[str, os.PathLike]], workers: Optional[int] = None) -> List[int]:
    """One group number per path; two paths share a number exactly when their bytes are identical.

    Numbers are assigned in order of first appearance, so the result depends only on the input order.
    Missing files raise ``FileNotFoundError``.
    """
    paths = [Path(p) for p in paths]
    # identity of a file's bytes: (size, inode) for the same file under two names, else (size, sha1)
    identity: List[object] = [None] * len(paths)
    by_size: Dict[int, List[int]] = defaultdict(list)
    inodes = []
    sizes = []
    for index, path in enumerate(paths):
        st = os.stat(path)
        by_size[st.st_size].append(index)
        inodes.append((st.st_dev, st.st_ino))
        sizes.append(st.st_size)

    to_hash = []
    for size, members in by_size.items():
        if len({inodes[i] for i in members}) == 1:  # one file (perhaps linked under several names)
            for i in members:
                identity[i] = (size, inodes[members[0]])
        else:
            to_hash.extend(members)

    # one hash per distinct inode; threads overlap the reads (hashlib releases the GIL on large buffers)
    unique_inode_index: Dict[tuple, int] = {}
    for i in to_hash:
        unique_inode_index.setdefault(inodes[i], i)
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) * 2)) as pool:
        digests = dict(zip(unique_inode_index, pool.map(lambda i: sha1_of_file(paths[i]),
                                                          unique_inode_index.values())))
    for i in to_hash:
        identity[i] = (sizes[i], digests[inodes[i]])

    numbers: Dict[object, int] = {}
    return [numbers.setdefault(key, len(numbers)) for key in identity]
