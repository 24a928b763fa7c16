"""Benchmarks: PDE data generators and performance measurements."""
