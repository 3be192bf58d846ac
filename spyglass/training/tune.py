"""Fine-tune a model on image-caption pairs into a new model version.

CLIP does poorly where its training data was thin (medical scans, satellite tiles, a
company's own parts), and a few hundred of the user's own pairs fix much of that. Modes:

- ``projection``: each tower's output is computed once and cached; only a square linear map
  after each tower (initialised to the identity) and the temperature train. Minutes on a CPU
  even for ViT-B-32, and the learned maps are folded into the model's own projection layers,
  so the result is the same architecture, loadable anywhere (``Encoder.fold_projections``).
- ``last``: the last N blocks of both towers, with the layers after them.
- ``full``: every parameter.

The loss is CLIP's InfoNCE with a learnable temperature; captions of the same image count
as positives of each other. A seeded split holds out whole images; after every epoch the
held-out Recall@k is measured with the same definitions as ``spyglass eval``, and training
stops when their sum (RSUM) has not improved for ``patience`` epochs, keeping the best
epoch. A checkpoint after every epoch lets an interrupted run resume where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from spyglass.encoders import Encoder
from spyglass.encoders.clip.contrastive import clip_loss
from spyglass.encoders.spec import model_id_of, parse_spec
from spyglass.errors import SpyglassError
from spyglass.retriever.evaluation import (
    Dataset,
    chance_metrics,
    image_pixels,
    retrieval_metrics,
)
from spyglass.settings import Settings

MODES = ("projection", "last", "full")
# Projections are small and start at the identity; towers are large and pretrained.
DEFAULT_LR = {"projection": 1e-3, "last": 1e-5, "full": 5e-6}
CHECKPOINT = "tune-checkpoint.pt"


@dataclass(frozen=True)
class TuneOptions:
    mode: str = "projection"
    blocks: int = 2  # for ``last``
    epochs: int = 20
    batch_size: int = 128
    lr: float | None = None  # None: DEFAULT_LR of the mode
    held_out: float = 0.2  # fraction of images held out for early stopping and the report
    patience: int = 3  # epochs without a better held-out RSUM before stopping
    anchor: float = 0.0  # how strongly weights are held near where they started (L2-SP; 0: free)
    blend: float = 0.5  # the tuned weights' share in the result (WiSE-FT; 1: the tuned weights alone)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SpyglassError(f"tuning mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not 0 < self.blend <= 1:
            raise SpyglassError("the blend (the tuned weights' share) must be in (0, 1]")
        if not 0 < self.held_out < 1:
            raise SpyglassError("the held-out fraction must be between 0 and 1")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]


@dataclass
class TuneReport:
    output: Path
    model_id: str
    mode: str
    train_pairs: int
    held_out_images: int
    before: dict[str, float]  # held-out metrics of the model as it was
    after: dict[str, float]  # ... of the tuned model (its best epoch)
    chance: dict[str, float]  # ... of a model ranking at random
    best_epoch: int
    epochs_run: int
    epoch_seconds: list[float] = field(default_factory=list)
    resumed_at: int | None = None  # the epoch an interrupted run resumed at


def tune_model(
    settings: Settings,
    spec: str,
    data: Dataset,
    options: TuneOptions,
    *,
    output: Path | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = False,
) -> TuneReport:
    """Fine-tune a fresh fp32 copy of ``spec`` (tuning changes it) on ``data``; the result is a new
    model version in ``output`` (default: under the models folder's ``tuned``), to switch to."""
    from spyglass.encoders import load_encoder

    fp32 = settings.encoder.model_copy(update={"precision": "fp32"})
    encoder = load_encoder(spec, settings=fp32)
    tuned = settings.encoder.models_dir / "tuned"
    output = output or tuned / f"{options.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
    return tune(
        encoder,
        data,
        Path(output).expanduser().absolute(),
        options,
        checkpoint_dir=tuned,
        max_pixels=settings.ingest.max_image_pixels,
        on_epoch=on_epoch,
        progress=progress,
    )


def split(data: Dataset, held_out: float, seed: int) -> tuple[Dataset, Dataset]:
    """(train, held out): whole images (with all their captions) held out, chosen by ``seed``."""
    order = np.random.default_rng(seed).permutation(len(data.images))
    count = min(len(order) - 1, max(1, round(held_out * len(order))))
    if len(order) < 4:
        raise SpyglassError(f"tuning needs at least 4 captioned images, not {len(order)}")
    held = set(order[:count].tolist())
    return _subset(data, [i for i in range(len(data.images)) if i not in held]), _subset(data, sorted(held))


def _subset(data: Dataset, images: list[int]) -> Dataset:
    position = {image: n for n, image in enumerate(images)}
    captions = [c for c, image in enumerate(data.caption_image) if int(image) in position]
    return Dataset(
        [data.images[i] for i in images],
        [data.captions[c] for c in captions],
        np.array([position[int(data.caption_image[c])] for c in captions], np.int64),
    )


def tune(
    encoder: Encoder,
    data: Dataset,
    output: Path,
    options: TuneOptions,
    *,
    checkpoint_dir: Path,
    max_pixels: int = 178_956_970,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = False,
) -> TuneReport:
    """Tune ``encoder`` (float32, modified in place) on ``data`` and save it to ``output``;
    ``progress`` shows a bar of training steps with the time left."""
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise SpyglassError(f"{output} already holds files; give a new folder for the tuned model")
    train, held = split(data, options.held_out, options.seed)
    torch.manual_seed(options.seed)
    trainer = _trainer(encoder, options)
    trainer.prepare(train, held, _pixels(encoder, train.images + held.images, max_pixels))
    trainer.anchor_at(options.anchor)
    checkpoint = Path(checkpoint_dir) / CHECKPOINT
    state = _resume(checkpoint, _fingerprint(encoder, data, options), trainer)
    resumed_at = state["epoch"] + 1 if state["epoch"] >= 0 else None
    if state["before"] is None:
        state["before"] = trainer.evaluate()
    optimizer = torch.optim.AdamW(trainer.parameters, lr=options.learning_rate, weight_decay=0.01)
    if state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    steps = math.ceil(len(train.captions) / options.batch_size)
    bar = tqdm(
        total=steps * options.epochs,
        initial=steps * (state["epoch"] + 1),
        desc=f"tuning ({options.mode})",
        unit="step",
        disable=not progress,
        leave=False,
    )
    for epoch in range(state["epoch"] + 1, options.epochs):
        if epoch - state["best_epoch"] > options.patience and state["best_epoch"] >= 0:
            break  # early stopping: the held-out RSUM stopped improving
        started = time.monotonic()
        trainer.train_epoch(optimizer, options.batch_size, options.seed + epoch, lambda: bar.update(1))
        metrics = trainer.evaluate()
        state["epoch_seconds"].append(time.monotonic() - started)
        if _rsum(metrics) > state["best_score"]:
            state.update(best_score=_rsum(metrics), best_epoch=epoch, best=trainer.state())
        state.update(epoch=epoch, optimizer=optimizer.state_dict(), current=trainer.state())
        _save_checkpoint(checkpoint, state)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    bar.close()
    if state["best"] is not None:
        trainer.load(state["best"])
    trainer.blend(options.blend)
    trainer.finish()
    after = trainer.evaluate_model()
    _save_model(encoder, output)
    checkpoint.unlink(missing_ok=True)
    return TuneReport(
        output=output,
        model_id=model_id_of(parse_spec(str(output))),
        mode=options.mode,
        train_pairs=len(train.captions),
        held_out_images=len(held.images),
        before=state["before"],
        after=after,
        chance=chance_metrics(held.caption_image, len(held.images)),
        best_epoch=state["best_epoch"],
        epochs_run=len(state["epoch_seconds"]),
        epoch_seconds=state["epoch_seconds"],
        resumed_at=resumed_at,
    )


class _Trainer:
    """What differs between modes: what trains, on what inputs, and how it is evaluated."""

    parameters: list[torch.nn.Parameter]

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def prepare(self, train: Dataset, held: Dataset, pixels: torch.Tensor) -> None:
        self.train, self.held = train, held
        self.train_pixels, self.held_pixels = pixels[: len(train.images)], pixels[len(train.images) :]

    def train_epoch(
        self, optimizer: torch.optim.Optimizer, batch_size: int, seed: int, stepped: Callable[[], None]
    ) -> None:
        order = torch.randperm(len(self.train.captions), generator=torch.Generator().manual_seed(seed))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if len(batch) < 2:
                continue
            images = torch.as_tensor(self.train.caption_image)[batch]
            image_features, text_features = self.features(images, batch)
            loss = clip_loss(image_features, text_features, self.logit_scale, images) + self.drift()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                self.logit_scale.clamp_(0, math.log(100))
            stepped()

    def anchor_at(self, strength: float) -> None:
        """Penalise moving away from the starting weights (L2-SP, Li et al. 2018), which are kept
        for ``blend`` too (the projections start at the identity)."""
        self.strength = strength
        self.start = [p.detach().clone() for p in self.parameters]

    def drift(self) -> torch.Tensor:
        moved = [(p, p0) for p, p0 in zip(self.parameters, self.start) if p is not self.logit_scale]
        return self.strength * sum(((p - p0) ** 2).sum() for p, p0 in moved)

    def blend(self, alpha: float) -> None:
        """Interpolate between the starting and the tuned weights (WiSE-FT, Wortsman et al. 2022):
        most of the new domain's gain, far less of the old domains' loss."""
        with torch.no_grad():
            for parameter, start in zip(self.parameters, self.start):
                parameter.copy_(torch.lerp(start, parameter, alpha))

    def evaluate_model(self) -> dict[str, float]:
        """Held-out metrics of the encoder itself, as ``spyglass eval`` would measure it."""
        images = self.encoder.encode_pixels(self.held_pixels)
        captions = self.encoder.encode_texts(self.held.captions)
        return retrieval_metrics(captions @ images.T, self.held.caption_image)


class _Projection(_Trainer):
    """Square maps after each tower's cached outputs; folded into the model when done."""

    def prepare(self, train: Dataset, held: Dataset, pixels: torch.Tensor) -> None:
        super().prepare(train, held, pixels)
        encoder = self.encoder
        self.images = torch.from_numpy(encoder.encode_pixels(pixels))
        self.texts = torch.from_numpy(encoder.encode_texts(train.captions + held.captions))
        dim = self.images.shape[1]
        self.image_map = torch.nn.Parameter(torch.eye(dim))
        self.text_map = torch.nn.Parameter(torch.eye(dim))
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(encoder.logit_scale)))
        self.parameters = [self.image_map, self.text_map, self.logit_scale]

    def features(self, images: torch.Tensor, captions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[images] @ self.image_map.T, self.texts[captions] @ self.text_map.T

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            first = len(self.train.images)
            images = F.normalize(self.images[first:] @ self.image_map.T, dim=-1)
            texts = F.normalize(self.texts[len(self.train.captions) :] @ self.text_map.T, dim=-1)
        return retrieval_metrics((texts @ images.T).numpy(), self.held.caption_image)

    def state(self) -> dict:
        return {
            name: getattr(self, name).detach().clone() for name in ("image_map", "text_map", "logit_scale")
        }

    def load(self, state: dict) -> None:
        with torch.no_grad():
            for name in ("image_map", "text_map", "logit_scale"):
                getattr(self, name).copy_(state[name])

    def finish(self) -> None:
        self.encoder.fold_projections(self.image_map.detach(), self.text_map.detach())
        scale = getattr(self.encoder.model, "logit_scale", None)
        if isinstance(scale, torch.nn.Parameter):
            with torch.no_grad():
                scale.copy_(self.logit_scale.detach())


class _Towers(_Trainer):
    """The towers' own parameters (all, or the last blocks) train on the pixels and captions."""

    def __init__(self, encoder: Encoder, last: int | None) -> None:
        super().__init__(encoder)
        self.parameters = encoder.tower_parameters(last)
        scale = getattr(encoder.model, "logit_scale", None)
        if not isinstance(scale, torch.nn.Parameter):
            scale = torch.nn.Parameter(torch.tensor(math.log(encoder.logit_scale)))
        self.logit_scale = scale
        if all(p is not scale for p in self.parameters):
            self.parameters.append(scale)
        names = {id(p): name for name, p in encoder.model.named_parameters()}
        self.names = [names.get(id(p), "logit_scale") for p in self.parameters]
        for parameter in self.parameters:
            parameter.requires_grad_(True)

    def features(self, images: torch.Tensor, captions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        texts = [self.train.captions[int(c)] for c in captions]
        return self.encoder.image_features(self.train_pixels[images]), self.encoder.text_features(texts)

    def evaluate(self) -> dict[str, float]:
        return self.evaluate_model()

    def state(self) -> dict:
        return {name: p.detach().clone() for name, p in zip(self.names, self.parameters)}

    def load(self, state: dict) -> None:
        with torch.no_grad():
            for name, parameter in zip(self.names, self.parameters):
                parameter.copy_(state[name])

    def finish(self) -> None:
        for parameter in self.parameters:
            parameter.requires_grad_(False)


def _trainer(encoder: Encoder, options: TuneOptions) -> _Trainer:
    if encoder.dtype != torch.float32:
        raise SpyglassError("tuning needs the model in float32 (load it with precision fp32)")
    if options.mode == "projection":
        return _Projection(encoder)
    return _Towers(encoder, options.blocks if options.mode == "last" else None)


def _pixels(encoder: Encoder, paths: list[Path], max_pixels: int) -> torch.Tensor:
    """Every image preprocessed once (decoded in threads, as ingest and eval do)."""
    one = partial(image_pixels, encoder, max_pixels=max_pixels, use="used for tuning")
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="spyglass-tune") as pool:
        return torch.stack(list(pool.map(one, paths)))


def _rsum(metrics: dict[str, float]) -> float:
    """The sum of every Recall@k both ways: one number that rises when retrieval improves."""
    return sum(value for key, value in metrics.items() if "_R@" in key)


def _fingerprint(encoder: Encoder, data: Dataset, options: TuneOptions) -> str:
    """What a checkpoint must match to be resumed: the model, the pairs, and the options."""
    settings = {k: v for k, v in asdict(options).items() if k not in ("epochs", "patience")}
    images = [str(p) for p in data.images]
    described = json.dumps([encoder.model_id, images, data.captions, data.caption_image.tolist(), settings])
    return hashlib.sha256(described.encode()).hexdigest()


def _resume(path: Path, fingerprint: str, trainer: _Trainer) -> dict:
    fresh = {
        "fingerprint": fingerprint,
        "epoch": -1,  # the last epoch finished
        "best_epoch": -1,
        "best_score": -1.0,
        "best": None,  # the trainer's state at its best epoch, and now
        "current": None,
        "optimizer": None,
        "before": None,  # held-out metrics before tuning
        "epoch_seconds": [],
    }
    try:
        saved = torch.load(path, weights_only=False)
    except (OSError, RuntimeError, EOFError):
        return fresh
    if saved.get("fingerprint") != fingerprint:
        return fresh  # another model, data set or set of options: start over
    trainer.load(saved["current"])
    return saved


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _save_model(encoder: Encoder, output: Path) -> None:
    """Write the tuned model next to ``output`` and move it into place: a folder that exists is complete."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".tuning-") as scratch:
        encoder.save(Path(scratch) / "model")
        if output.exists():
            output.rmdir()  # empty (checked before training)
        shutil.move(Path(scratch) / "model", output)
