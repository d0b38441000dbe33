"""Wampgate's benchmarks: numbers printed and written to bench/results/, never timed assertions (DESIGN.md)."""
