"""Dataset readers and writers: logo datasets in, darknet datasets out.

Readers yield :class:`Sample` objects (absolute xyxy boxes in the displayed image); writers consume them::

    from pydarknet.datasets import read_logos32plus, write_darknet_dataset
    ds = write_darknet_dataset(read_logos32plus("/data/Logos-32plus"), "ds/", classes=["cocacola", "pepsi"])
    print(ds.summary())
"""
from __future__ import annotations

from .check import CheckReport, Problem, check_dataset  # noqa: F401
from .coco import read_coco, write_coco  # noqa: F401
from .darknet_writer import ConversionStats, DarknetDataset, load_darknet_dataset, write_darknet_dataset  # noqa: F401
from .download import DownloadFailure, DownloadReport, download_litw_images  # noqa: F401
from .flickrlogos import read_flickrlogos32  # noqa: F401
from .litw import normalize_brand, read_litw  # noqa: F401
from .logos32plus import read_logos32plus  # noqa: F401
from .merge import merge_datasets  # noqa: F401
from .model import Sample  # noqa: F401
from .problems import DatasetWarning  # noqa: F401
from .voc import read_voc  # noqa: F401
from .yolo import read_yolo  # noqa: F401

__all__ = [
    "Sample", "read_logos32plus", "read_litw", "read_flickrlogos32", "read_voc", "read_yolo", "read_coco",
    "write_darknet_dataset", "load_darknet_dataset", "write_coco", "merge_datasets", "check_dataset",
    "download_litw_images", "normalize_brand", "DarknetDataset", "ConversionStats", "CheckReport", "Problem",
    "DownloadReport", "DownloadFailure", "DatasetWarning",
]
