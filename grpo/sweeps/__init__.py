"""Hydra multirun sweeps: expanding a sweep into its jobs, reading each job's run dir, plotting the comparison."""
