"""Batch scoring as background jobs: submit.py (API), run.py + chunks.py (worker), results.py (API)."""
