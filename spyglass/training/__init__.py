"""Training: synthetic data with known truth and a small contrastive trainer.

Used to build ``builtin:shapes`` (a model that has real retrieval signal without
any downloaded weights) and the foundation for user-facing fine-tuning.
"""
