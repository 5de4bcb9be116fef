"""From the validator option group to a running `Validator` (with its shared cache)."""

from __future__ import annotations

import click

from tokengate.cli.options import ValidatorOptions
from tokengate.resource import SharedTokenCache, Validator, ValidatorSettings, create_validator
from tokengate.resource.runtime.replay import ReplayStore


def build_validator(options: ValidatorOptions) -> Validator:
    """The validator the options describe; bad settings are a usage error, never a start."""
    settings = options.settings()
    shared, replay = (
        (None, None) if options.redis_url is None else _redis(options.redis_url, settings)
    )
    try:
        return create_validator(settings, shared_cache=shared, replay_store=replay)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _redis(url: str, settings: ValidatorSettings) -> tuple[SharedTokenCache, ReplayStore]:
    try:
        from tokengate.resource.runtime.redis import (  # noqa: PLC0415
            RedisReplayStore,
            RedisTokenCache,
        )
    except ModuleNotFoundError as exc:
        raise click.UsageError(
            f"--redis-url needs {exc.name}: pip install 'tokengate[redis]'"
        ) from None
    return RedisTokenCache.from_url(url, settings), RedisReplayStore.from_url(url)
