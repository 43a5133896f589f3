"""Faust agents, one per file; each calls the pure core and records outcomes."""

__all__: list[str] = []
