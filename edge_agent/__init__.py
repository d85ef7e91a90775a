"""edgesight edge agent: camera frames → motion gate → int8 CNN → tracks → rules → events over MQTT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgesight")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
