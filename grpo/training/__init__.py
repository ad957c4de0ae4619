"""Training: TRL's GRPOTrainer with our speed-ups, the GRPOConfig it is built from, callbacks, loggers, the
pre-flight check and held-out accuracy during training."""
