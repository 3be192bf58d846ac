"""What every command shares: the console, settings from the global flags, the engine, filters."""

from __future__ import annotations

import typer
from rich.console import Console

from spyglass.settings import Settings

console = Console(soft_wrap=True)


def global_settings_of(ctx: typer.Context) -> Settings:
    """Settings with the global flags (``--data-dir``, ``--model`` ...) applied, for every collection."""
    return Settings(**{key: value for key, value in ctx.obj.items() if key != "collection"})


def settings_of(ctx: typer.Context) -> Settings:
    """The settings of the collection ``--collection`` names (the data directory itself by default)."""
    from spyglass.runtime.collections import settings_for

    return settings_for(global_settings_of(ctx), ctx.obj["collection"])


def engine_of(ctx: typer.Context):
    """The facade every command works through, for the flags' settings."""
    from spyglass.engine import Engine

    return Engine(settings_of(ctx))


def filters_of(values: list[str] | None):
    """``-f key=value`` options as search filters; a bad one is a usage error."""
    from spyglass.filters import parse_filter_args

    try:
        return parse_filter_args(values or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--filter") from None
