"""The machine-learning side: the synthetic cohort, features, models, scoring, evaluation.

Kafka-free and unaware of the wire format (DESIGN.md). Everything it ships is
synthetic and not clinically validated. Names load on first use (onnxruntime
only with the scorer).
"""

from importlib import import_module

__all__ = ["CohortConfig", "CrisisDetector", "PersonFeatures", "Registry", "Scorer", "simulate"]

_WHERE = {
    "CohortConfig": ("simulator", "CohortConfig"),
    "simulate": ("simulator", "simulate"),
    "CrisisDetector": ("crisis", "CrisisDetector"),
    "PersonFeatures": ("features", "PersonFeatures"),
    "Registry": ("registry", "Registry"),
    "Scorer": ("scoring", "Scorer"),
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(import_module(f".{module}", __name__), attribute)
