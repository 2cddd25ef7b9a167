"""Benchmarks (not tests): each figure against a baseline measured in the same run."""
