"""The text space's model: a sentence-transformers model for passages and questions (``model``).
Its torch-free ONNX form lives with the other fast forms in ``encoders.fast``."""
