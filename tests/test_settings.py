from pathlib import Path

import pytest
from pydantic import ValidationError

from spyglass.settings import DEFAULT_MODEL, Settings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = Settings()
    assert settings.model == DEFAULT_MODEL
    assert settings.data_dir == tmp_path / "spyglass"
    assert settings.models_dir == tmp_path / "spyglass" / "models"


def test_precedence_file_then_env_then_arguments(monkeypatch, tmp_path):
    config = tmp_path / "spyglass.toml"
    config.write_text('model = "builtin:shapes"\nbatch_size = 8\nthreads = 3\n')
    monkeypatch.setenv("SPYGLASS_CONFIG", str(config))
    from_file = Settings()
    assert (from_file.model, from_file.batch_size, from_file.threads) == ("builtin:shapes", 8, 3)
    monkeypatch.setenv("SPYGLASS_BATCH_SIZE", "16")
    from_env = Settings()
    assert (from_env.model, from_env.batch_size) == ("builtin:shapes", 16)
    explicit = Settings(batch_size=4, data_dir=Path("/x"))
    assert (explicit.batch_size, explicit.threads, explicit.data_dir) == (4, 3, Path("/x"))


def test_invalid_values_are_rejected(monkeypatch):
    monkeypatch.setenv("SPYGLASS_PRECISION", "fp8")
    with pytest.raises(ValidationError, match="precision"):
        Settings()
    with pytest.raises(ValidationError, match="batch_size"):
        Settings(precision="auto", batch_size=0)
