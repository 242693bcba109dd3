"""Settings from the environment (and `.env`): parsed, defaulted, and refused with `ConfigError` naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import ConfigError, QueueSettings, Settings, load_settings

VARIABLES = (
    "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER", "CONVEYOR_DATA_DIR", "CONVEYOR_PREFIX", "CONVEYOR_QUEUES",
    "CONVEYOR_MAX_PAYLOAD_BYTES", "CONVEYOR_LOCK_DURATION_MS", "CONVEYOR_STALLED_INTERVAL_MS",
    "CONVEYOR_SHUTDOWN_GRACE_S", "CONVEYOR_HEARTBEAT_S", "INDEXING_QUEUE_CONCURRENCY", "AI_QUEUE_CONCURRENCY",
    "BACKGROUND_QUEUE_CONCURRENCY",
)  # fmt: skip


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment without Conveyor variables, in a directory without a `.env` file."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def refused(variable: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert variable in str(caught.value)
    return caught.value


def test_defaults_use_the_embedded_redis_and_bullmq_prefix() -> None:
    settings = load_settings()
    assert settings.redis_url is None
    assert settings.redis_host is None
    assert not settings.redis_configured
    assert (settings.redis_port, settings.redis_db, settings.conveyor_prefix) == (6379, 0, "bull")
    assert settings.conveyor_max_payload_bytes == 1024 * 1024
    assert settings.conveyor_data_dir == Path(".conveyor")
    assert settings.conveyor_queues == {}


def test_redis_url_is_read(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", "redis://:secret@cache.internal:6380/2")
    settings = load_settings()
    assert settings.redis_url == "redis://:secret@cache.internal:6380/2"
    assert settings.redis_configured


def test_redis_host_port_password_and_db_are_read(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_HOST", "cache.internal")
    env.setenv("REDIS_PORT", "6380")
    env.setenv("REDIS_PASSWORD", "s3cret")
    env.setenv("REDIS_DB", "3")
    settings = load_settings()
    assert (settings.redis_host, settings.redis_port, settings.redis_password, settings.redis_db) == (
        "cache.internal", 6380, "s3cret", 3
    )  # fmt: skip
    assert settings.redis_configured


def test_sentinels_alone_count_as_a_configured_redis(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_SENTINELS", "10.0.0.5:26379,10.0.0.6:26379")
    assert load_settings().redis_configured


def test_conveyor_queues_json_is_parsed_into_queue_settings(env: pytest.MonkeyPatch) -> None:
    env.setenv(
        "CONVEYOR_QUEUES",
        '{"emails": {"concurrency": 4, "attempts": 5, "backoff": {"type": "fixed", "delay": 300}}, "reports": {}}',
    )
    queues = load_settings().conveyor_queues
    assert set(queues) == {"emails", "reports"}
    assert (queues["emails"].concurrency, queues["emails"].attempts) == (4, 5)
    assert queues["emails"].backoff is not None
    assert (queues["emails"].backoff.type, queues["emails"].backoff.delay) == ("fixed", 300)
    assert queues["reports"] == QueueSettings()


def test_keyword_overrides_win_over_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", "redis://from-env:6379/0")
    env.setenv("INDEXING_QUEUE_CONCURRENCY", "9")
    settings = load_settings(redis_url="redis://override:6379/0", conveyor_queues='{"q": {"attempts": 2}}')
    assert settings.redis_url == "redis://override:6379/0"
    assert settings.indexing_queue_concurrency == 9
    assert settings.conveyor_queues["q"].attempts == 2


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REDIS_HOST=from-dotenv\nAI_QUEUE_CONCURRENCY=7\n")
    settings = load_settings()
    assert (settings.redis_host, settings.ai_queue_concurrency) == ("from-dotenv", 7)


def test_the_environment_wins_over_the_dotenv_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REDIS_HOST=from-dotenv\n")
    env.setenv("REDIS_HOST", "from-env")
    assert load_settings().redis_host == "from-env"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_PORT", "abc"),
        ("REDIS_PORT", "0"),
        ("REDIS_PORT", "70000"),
        ("REDIS_DB", "-1"),
        ("CONVEYOR_PREFIX", "bull:x"),
        ("CONVEYOR_PREFIX", ""),
        ("CONVEYOR_MAX_PAYLOAD_BYTES", "0"),
        ("CONVEYOR_LOCK_DURATION_MS", "10"),
        ("INDEXING_QUEUE_CONCURRENCY", "0"),
        ("AI_QUEUE_CONCURRENCY", "three"),
        ("BACKGROUND_QUEUE_CONCURRENCY", "-2"),
        ("CONVEYOR_QUEUES", "[1, 2]"),
        ("CONVEYOR_QUEUES", '{"emails": {"concurrency": 0}}'),
        ("CONVEYOR_QUEUES", '{"emails": {"backoff": {"type": "linear"}}}'),
    ],
)
def test_a_bad_value_raises_config_error_naming_the_variable(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    env.setenv(variable, value)
    error = refused(variable)
    assert str(error).startswith("Invalid configuration")


def test_config_error_does_not_quote_the_password(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_PASSWORD", "hunter2-secret")
    env.setenv("REDIS_PORT", "not-a-port")
    assert "hunter2-secret" not in str(refused("REDIS_PORT"))


def test_an_empty_conveyor_queues_means_no_custom_queues(env: pytest.MonkeyPatch) -> None:
    env.setenv("CONVEYOR_QUEUES", "")
    assert load_settings().conveyor_queues == {}


def test_conveyor_queues_that_is_not_json_raises_config_error_naming_it(env: pytest.MonkeyPatch) -> None:
    env.setenv("CONVEYOR_QUEUES", "{emails: {concurrency: 4}}")
    refused("CONVEYOR_QUEUES")


def test_an_unknown_queue_setting_raises_config_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("CONVEYOR_QUEUES", '{"emails": {"atempts": 5}}')
    refused("atempts")


def test_a_custom_queue_name_with_a_colon_raises_config_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("CONVEYOR_QUEUES", '{"emails:urgent": {}}')
    refused("CONVEYOR_QUEUES")


def test_a_redis_url_without_a_scheme_raises_config_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", "localhost:6379")
    refused("REDIS_URL")


def test_settings_field_names_map_to_upper_case_variables() -> None:
    fields = set(Settings.model_fields)
    assert {name.lower() for name in VARIABLES} <= fields
