from pathlib import Path

import pytest
from pydantic import ValidationError

from spyglass.settings import DEFAULT_MODEL, Settings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = Settings()
    assert settings.encoder.model == DEFAULT_MODEL
    assert settings.data_dir == tmp_path / "data" / "spyglass"
    assert (
        settings.encoder.models_dir == tmp_path / "cache" / "spyglass" / "models"
    )  # per user, not per data dir


def test_precedence_file_then_env_then_arguments(monkeypatch, tmp_path):
    config = tmp_path / "spyglass.toml"
    config.write_text(
        'model = "builtin:shapes"\n\n[encoder]\nbatch_size = 8\nthreads = 3\n\n[index]\nkind = "hnsw"\n'
    )
    monkeypatch.setenv("SPYGLASS_CONFIG", str(config))
    from_file = Settings()
    assert (from_file.encoder.model, from_file.encoder.batch_size, from_file.encoder.threads) == (
        "builtin:shapes",
        8,
        3,
    )
    assert from_file.index.kind == "hnsw"
    monkeypatch.setenv("SPYGLASS_ENCODER__BATCH_SIZE", "16")
    monkeypatch.setenv("SPYGLASS_INDEX__KIND", "flat")
    from_env = Settings()
    assert (from_env.encoder.model, from_env.encoder.batch_size, from_env.encoder.threads) == (
        "builtin:shapes",
        16,
        3,
    )
    assert from_env.index.kind == "flat"
    explicit = Settings(batch_size=4, data_dir=Path("/x"))
    assert (explicit.encoder.batch_size, explicit.encoder.threads, explicit.data_dir) == (4, 3, Path("/x"))


def test_flat_shortcuts_still_work_from_the_environment(monkeypatch):
    """SPYGLASS_MODEL and friends are in users' shell profiles and compose files."""
    monkeypatch.setenv("SPYGLASS_MODEL", "builtin:shapes")
    monkeypatch.setenv("SPYGLASS_INDEX", "hnsw")
    monkeypatch.setenv("SPYGLASS_GENERATOR", "openai")
    monkeypatch.setenv("SPYGLASS_GENERATOR_MODEL", "llava")
    monkeypatch.setenv("SPYGLASS_ALLOWED_ROOTS", '["/srv"]')
    settings = Settings()
    assert settings.encoder.model == "builtin:shapes" and settings.index.kind == "hnsw"
    assert (settings.generator.backend, settings.generator.model) == ("openai", "llava")
    assert settings.api.allowed_roots == [Path("/srv")]
    monkeypatch.setenv("SPYGLASS_ENCODER__MODEL", "/models/x")  # the section's own name wins
    assert Settings().encoder.model == "/models/x"
    mixed = Settings(allowed_roots=["/a"], api={"public_metrics": True})  # a shortcut beside its section
    assert mixed.api.allowed_roots == [Path("/a")] and mixed.api.public_metrics


def test_secrets_are_secret_types(monkeypatch):
    monkeypatch.setenv("SPYGLASS_API__API_KEYS", '["reader-key"]')
    monkeypatch.setenv("SPYGLASS_GENERATOR__API_KEY", "sk-secret")
    settings = Settings()
    assert settings.api.api_keys[0].get_secret_value() == "reader-key"
    assert settings.generator.api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(settings) and "reader-key" not in str(settings.model_dump())


def test_invalid_values_are_rejected(monkeypatch):
    monkeypatch.setenv("SPYGLASS_PRECISION", "fp8")
    with pytest.raises(ValidationError, match="precision"):
        Settings()
    with pytest.raises(ValidationError, match="batch_size"):
        Settings(precision="auto", batch_size=0)


def test_scoped_keys_come_from_the_environment_as_json_and_never_show(monkeypatch):
    from spyglass.api.auth import Grant, fingerprint, grant_of

    monkeypatch.setenv(
        "SPYGLASS_API__KEYS",
        '[{"key": "fam-secret", "role": "write", "collections": ["family"]}, {"key": "boss", "role": "admin", "collections": ["x"]}]',
    )
    monkeypatch.setenv("SPYGLASS_API_KEYS", '["old-reader"]')
    api = Settings().api
    assert "fam-secret" not in repr(api) and "old-reader" not in repr(api)

    def role_and_scope(token, local=None):
        found = grant_of(api, token, local)
        assert found.owner == fingerprint(token) and token not in found.owner  # a hash, not the key
        return found.role, found.collections

    assert role_and_scope("fam-secret") == ("write", frozenset({"family"}))
    assert role_and_scope("boss") == ("admin", None)  # admin is every collection, whatever it lists
    assert role_and_scope("old-reader") == ("read", None)  # the first releases' read keys: all of them
    assert role_and_scope("serve-token", "serve-token") == ("read", frozenset({"default"}))
    assert fingerprint("fam-secret") != fingerprint("boss")
    assert grant_of(api, "guess", "serve-token") is None and grant_of(api, None, None) is None
    assert not Grant("read", frozenset({"family"})).writes("family") and not Grant(
        "write", frozenset({"family"})
    ).reads("work")
