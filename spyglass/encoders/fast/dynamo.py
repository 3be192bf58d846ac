"""torch's dynamo ONNX exporter, run the way every export here needs it.

Quietly (it prints progress and warns about its own internals), outside inference mode (a model
loaded for ingest runs in it, and the exporter traces with autograd's dispatch), with the weights
inside the one file that onnxruntime then optimises (``cache.save_optimised``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch


def export_onnx(
    module: torch.nn.Module,
    example: tuple,
    path: Path,
    *,
    inputs: list[str],
    outputs: list[str],
    dynamic_shapes: tuple,
) -> None:
    """Write ``module`` traced on ``example`` to ``path`` with ``dynamic_shapes`` kept dynamic."""
    quiet = logging.getLogger("onnx_ir"), logging.getLogger("onnxscript")
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # it logs each deduplicated initializer at INFO
        logger.setLevel(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            torch.inference_mode(False),
            torch.no_grad(),
        ):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example,
                str(path),
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=dynamic_shapes,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
