"""Hydra multirun sweeps: expanding a sweep into its jobs, reading each job's run dir, grouping seeds into settings,
comparing settings with a baseline, and the report's tables, page and plot."""
