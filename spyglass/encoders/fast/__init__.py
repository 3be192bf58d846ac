"""The fast forms of the models: ONNX exports that ingest, search and serve run without torch.

Each model is exported once, by the process that has the full model loaded, into the user
cache (``cache``: one ``publish`` and one ``read_manifest`` for every kind of export), and
only after it matched the model it came from on probe inputs:

- ``text_tower`` / ``text_export``: a CLIP model's text tower (text queries);
- ``image_tower`` / ``image_export``: its image tower in fp32 and, when it passes its check,
  int8 (ingest, image queries), with ``pixels``, the preprocessing in numpy;
- ``sentence``: the text space's sentence model;
- ``choice``: which precision ``auto`` means on this machine.

``export`` decides what to export for a model; ``encoders.load_encoder`` opens the result.
"""
