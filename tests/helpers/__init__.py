"""Helpers shared by the tests (and the benchmarks that check against the same references)."""
