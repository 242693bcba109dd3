"""`--app` / `CONVEYOR_APP`: which application the CLI runs."""

from __future__ import annotations

import pytest

from conveyor import Conveyor
from conveyor.standard import AppLoadError, create_app, load_app
from tests.cli import sample_app

app_instance = sample_app.create_app()


def returns_a_number() -> int:
    return 7


def needs_an_argument(name: str) -> Conveyor:
    raise AssertionError("never called")


def test_a_factory_is_called_and_an_instance_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_APP", raising=False)
    from_factory = load_app("tests.cli.sample_app:create_app")
    assert from_factory.lookup("background", "greet") is not None
    assert load_app("tests.cli.test_app_loading:app_instance") is app_instance


def test_without_a_spec_the_env_var_then_the_standard_app_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_APP", "tests.cli.test_app_loading:app_instance")
    assert load_app(None) is app_instance
    monkeypatch.delenv("CONVEYOR_APP")
    standard = load_app(None)
    assert standard.queue_names == create_app().queue_names
    assert standard.lookup("background", "greet") is None


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("tests.cli.sample_app", "use 'package.module:attribute'"),
        ("tests.cli.nowhere:app", "Cannot import 'tests.cli.nowhere'"),
        ("tests.cli.sample_app:missing", "has no attribute 'missing'"),
        ("tests.cli.test_app_loading:returns_a_number", "is a int, not a Conveyor"),
        ("conveyor.standard:DEFAULT_APP", "is a str, not a Conveyor"),
        ("tests.cli.test_app_loading:needs_an_argument", "needs arguments"),
    ],
)
def test_a_spec_that_names_no_conveyor_is_a_clear_error(spec: str, says: str) -> None:
    with pytest.raises(AppLoadError, match=says.replace("(", r"\(")):
        load_app(spec)
