"""l1ml: machine learning for Level-1 trigger FPGAs, from L1 events to verified firmware."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("l1ml")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
