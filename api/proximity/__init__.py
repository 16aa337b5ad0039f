"""Proximity analysis: for each point of one dataset, the points of another within a radius."""
