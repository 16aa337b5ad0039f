"""The analysis tools, grouped by theme; each module exports ``TOOLS``."""
