"""The machine-learning side: features, the synthetic cohort, models, scoring.

Kafka-free and unaware of the wire format (DESIGN.md).
"""

__all__: list[str] = []
