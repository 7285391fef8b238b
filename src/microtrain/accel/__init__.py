"""Accelerator models used by heterogeneous targets (docs/ita.md)."""
