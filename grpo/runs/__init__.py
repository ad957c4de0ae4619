"""Runs: the run-dir layout (layout.py), what a run records (record.py), resuming (resume.py), process ranks."""
