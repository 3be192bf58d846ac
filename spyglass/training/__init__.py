"""Training: fine-tuning the active model on a captioned set or on pairs mined from the collection.

It builds on ``encoders`` (the models, the contrastive loss and the generated shapes that
``builtin:shapes`` is trained on live there, below it), never the other way round.
"""
