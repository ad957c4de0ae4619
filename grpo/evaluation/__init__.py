"""Evaluation of a trained model against its base (`python -m grpo.evaluate`): trained weights and config, batched
generation, metrics from the training rewards, statistics (grpo.evaluation.stats), and the report files."""
