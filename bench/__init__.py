"""Benchmarks: each compares against a baseline measured in the same run and ends with a JSON line."""
