"""The pipeline: the event contract, the one code path, and its Kafka edge.

Names load on first use, so `carewatch publish` does not pay for the models
and the offline replay does not import faust.
"""

from importlib import import_module

__all__ = ["Event", "InvalidEvent", "Outcome", "Pipeline", "Publisher", "Settings", "load_settings", "parse"]

_WHERE = {
    "Event": ("events", "Event"),
    "parse": ("events", "parse"),
    "InvalidEvent": ("exceptions", "InvalidEvent"),
    "Outcome": ("pipeline", "Outcome"),
    "Pipeline": ("pipeline", "Pipeline"),
    "Publisher": ("publish", "Publisher"),
    "Settings": ("config", "Settings"),
    "load_settings": ("config", "load"),
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'streams' has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(import_module(f".{module}", __name__), attribute)
