"""Metric code on hand-made similarity matrices, and `spyglass eval` end to end on Flickr8k-1k."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from spyglass.errors import SpyglassError
from spyglass.retriever.evaluation import load_dataset, retrieval_metrics


def test_perfect_and_reversed_rankings():
    caption_image = np.array([0, 0, 1, 1, 2, 2])
    perfect = np.eye(3)[caption_image]  # each caption scores 1 on its image
    metrics = retrieval_metrics(perfect, caption_image)
    assert all(
        metrics[f"{d}_{m}"] == 1.0 for d in ("text_to_image", "image_to_text") for m in ("R@1", "R@5", "MRR")
    )
    worst = -perfect
    metrics = retrieval_metrics(worst, caption_image, ks=(1, 2, 3))
    assert (
        metrics["text_to_image_R@1"] == 0
        and metrics["text_to_image_R@2"] == 0
        and metrics["text_to_image_R@3"] == 1
    )
    assert metrics["text_to_image_MRR"] == pytest.approx(1 / 3)


def test_hand_computed_example():
    # 3 images; captions 0,1 -> image 0; 2 -> image 1; 3 -> image 2
    caption_image = np.array([0, 0, 1, 2])
    scores = np.array(
        [
            [0.9, 0.1, 0.2],  # caption 0: image 0 first            -> rank 0
            [0.3, 0.8, 0.1],  # caption 1: image 0 second            -> rank 1
            [0.5, 0.4, 0.6],  # caption 2: image 1 third             -> rank 2
            [0.1, 0.2, 0.3],  # caption 3: image 2 first             -> rank 0
        ]
    )
    metrics = retrieval_metrics(scores, caption_image, ks=(1, 2))
    assert metrics["text_to_image_R@1"] == 0.5 and metrics["text_to_image_R@2"] == 0.75
    assert metrics["text_to_image_MRR"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1) / 4)
    # image 0: best caption is 0 (0.9), nothing higher -> rank 0
    # image 1: its caption 2 scores 0.4; captions 1 (0.8) higher -> rank 1
    # image 2: caption 3 scores 0.3; captions 2 (0.6) higher -> rank 1
    assert metrics["image_to_text_R@1"] == pytest.approx(1 / 3) and metrics["image_to_text_R@2"] == 1.0
    assert metrics["image_to_text_MRR"] == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_coco_json_and_bad_datasets(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    coco = tmp_path / "captions.json"
    coco.write_text(
        json.dumps(
            {
                "images": [{"id": 7, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 7, "caption": "one"}, {"image_id": 7, "caption": "two"}],
            }
        )
    )
    data = load_dataset(coco)
    assert data.captions == ["one", "two"] and data.caption_image.tolist() == [0, 0]
    with pytest.raises(SpyglassError, match="neither a folder"):
        load_dataset(tmp_path)
    (tmp_path / "captions.csv").write_text("image,caption\nmissing.jpg,hello\n")
    with pytest.raises(SpyglassError, match="missing from"):
        load_dataset(tmp_path)


def test_cli_eval_on_flickr8k(data_dir, shapes_encoder):
    dataset = shared_path("data", "flickr8k-1k")
    env = {**os.environ, "SPYGLASS_DATA_DIR": str(data_dir), "SPYGLASS_MODEL": "builtin:shapes"}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("spyglass")), "eval", str(dataset), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["images"] == 1000 and report["captions"] == 5000
    metrics = report["metrics"]
    for direction in ("text_to_image", "image_to_text"):
        values = [metrics[f"{direction}_R@{k}"] for k in (1, 5, 10)]
        assert (
            values == sorted(values) and 0 <= values[0] and values[-1] < 0.1
        )  # a shapes model is near chance here


def test_chance_levels_match_a_random_ranker():
    """The printed chance row is what random scores achieve (checked by simulation, not by the formula itself)."""
    from spyglass.retriever.evaluation import chance_metrics

    rng = np.random.default_rng(0)
    caption_image = np.repeat(np.arange(40), 5)
    runs = [retrieval_metrics(rng.random((200, 40)), caption_image) for _ in range(600)]
    chance = chance_metrics(caption_image, 40)
    for key, value in chance.items():
        simulated = np.mean([run[key] for run in runs])
        assert abs(simulated - value) < 0.006, (key, simulated, value)
