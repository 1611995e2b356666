"""Dataset readers and writers: logo datasets in, darknet datasets out."""
from .model import Sample  # noqa: F401
