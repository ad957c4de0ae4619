"""The outcome verifier (`python -m grpo.train_rm`): sampling labelled answers, pairs and answer swaps, fitting
with trl.RewardTrainer, calibrating its right/wrong threshold."""
