"""Insight text: Korean sentences about a dataset and comparisons, computed from the stored data."""
