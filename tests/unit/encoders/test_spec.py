from pathlib import Path

import pytest

from spyglass.encoders.spec import ModelSpec, fingerprint, parse_spec
from spyglass.errors import ModelSpecError


def test_open_clip_tag():
    assert parse_spec("open_clip:ViT-B-32/laion2b_s34b_b79k") == ModelSpec(
        "open_clip", "ViT-B-32", "laion2b_s34b_b79k"
    )


def test_open_clip_hf_hub():
    spec = parse_spec("open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert spec.backend == "open_clip" and spec.name == "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


def test_open_clip_checkpoint_file(tmp_path):
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"x")
    spec = parse_spec(f"open_clip:ViT-B-32/{checkpoint}")
    assert (spec.name, spec.local, spec.tag) == ("ViT-B-32", checkpoint, str(checkpoint))


def test_hf_hub_and_local(tmp_path):
    assert parse_spec("hf:openai/clip-vit-base-patch32") == ModelSpec("hf", "openai/clip-vit-base-patch32")
    assert parse_spec(f"hf:{tmp_path}").local == tmp_path


def test_bare_directory_is_sniffed(tmp_path):
    (tmp_path / "oc").mkdir()
    (tmp_path / "oc" / "open_clip_config.json").write_text("{}")
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "config.json").write_text("{}")
    assert parse_spec(str(tmp_path / "oc")).backend == "open_clip"
    assert parse_spec(str(tmp_path / "tf")).backend == "hf"
    with pytest.raises(ModelSpecError, match="Cannot tell which backend"):
        parse_spec(str(tmp_path))


@pytest.mark.parametrize(
    "text, message",
    [
        ("open_clip:ViT-B-32", "names no pretrained tag"),
        ("builtin:cats", "Unknown builtin model"),
        ("no-such-thing", "neither a known form nor an existing path"),
        ("hf:/definitely/not/here", "does not exist"),
    ],
)
def test_bad_specs_say_why(text, message):
    with pytest.raises(ModelSpecError, match=message):
        parse_spec(text)


def test_fingerprint_changes_with_content(tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 10)
    first = fingerprint(weights)
    assert fingerprint(weights) == first
    weights.write_bytes(b"b" * 10)
    assert fingerprint(weights) != first
    assert fingerprint(Path(tmp_path)) != first  # a directory hashes its files with their names


@pytest.mark.parametrize("spec", ["a" * 4000, "open_clip:/" + "b" * 4000, "~nobody-has-this-name/model"])
def test_unusable_paths_are_spec_errors_not_crashes(spec):
    """Found by schemathesis through POST /v1/models: a path too long for the OS, or ~user of nobody."""
    with pytest.raises(ModelSpecError):
        parse_spec(spec)
