"""Benchmarks: run a module with ``python -m benchmarks.<name>``."""
