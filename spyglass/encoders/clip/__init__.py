"""CLIP models, one backend per module: ``openclip`` (any open_clip architecture, tag, hub repo or
checkpoint), ``hf`` (transformers' CLIPModel), ``builtin`` (``builtin:shapes``, trained here on
``shapes``), with ``tiny`` for tests and ``contrastive`` for training. ``load_encoder`` in the
parent package picks one."""
