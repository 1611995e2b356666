"""Dataset readers and writers: logo datasets in, darknet datasets out."""
from .model import Sample  # noqa: F401
from .darknet_writer import ConversionStats, DarknetDataset, load_darknet_dataset, write_darknet_dataset  # noqa: F401
