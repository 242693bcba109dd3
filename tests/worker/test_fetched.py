"""Checking a fetched job hash: every field the worker reads is parsed once, and whatever is wrong becomes a
reason, never an exception (a raise there used to stop the queue's fetch loop)."""

from __future__ import annotations

import random

import pytest

from conveyor.worker.fetched import check_fields, repairs

ODD_VALUES = ["", "null", "1", "-1", "1.5", '"x"', "[]", "{}", "{", "NaN", "\udcff", "\udc80\x04", "true", "9" * 400]


def test_odd_values_in_any_field_never_raise() -> None:
    rng = random.Random(15)
    for _ in range(2000):
        fields = {name: rng.choice(ODD_VALUES) for name in ("name", "data", "opts", "atm", "ats", "timestamp")}
        checked = check_fields(fields)
        assert checked.problem is not None or isinstance(checked.opts, dict)
        assert checked.max_attempts >= 1


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        ('{"backoff": {"delay": "soon"}}', "option 'backoff' is not a backoff"),
        ('{"removeOnFail": {"count": "all"}}', "option 'removeOnFail' is not a keep rule"),
        ('{"timeout": true}', "option 'timeout' is not a number"),
        ('{"crk": 7}', "option 'crk' is not a string"),
        ("null", "field 'opts' is not a JSON object"),
    ],
)
def test_options_of_the_wrong_type_are_named(opts: str, problem: str) -> None:
    checked = check_fields({"name": "ok", "data": "{}", "opts": opts})
    assert checked.problem is not None
    assert checked.problem.startswith(problem)


def test_a_well_formed_hash_parses_with_bullmqs_short_backoff_expanded() -> None:
    checked = check_fields({"name": "ok", "data": '{"n": 1}', "opts": '{"attempts": 3, "backoff": 500}', "atm": "2"})
    assert checked.problem is None
    assert (checked.data, checked.attempts_made, checked.max_attempts) == ({"n": 1}, 2, 3)
    assert checked.opts["backoff"] == {"type": "fixed", "delay": 500}


def test_a_pickled_payload_is_named_as_such() -> None:
    checked = check_fields({"name": "ok", "data": "\udc80\x04\udc95"})
    assert checked.problem == (
        "field 'data' is not UTF-8 (byte 0x80 at character 0) (it looks like a Python pickle; payloads must be JSON)"
    )


def test_a_counter_beyond_64_bits_is_not_an_integer_to_redis() -> None:
    checked = check_fields({"name": "ok", "atm": "9" * 20})
    assert checked.problem == f"field 'atm' is not an integer ('{'9' * 20}')"


@pytest.mark.parametrize("value", ["\u0663", "-\u0663", "\u00b2", "1.0", " 1"])
def test_digits_outside_ascii_are_not_an_integer_to_redis(value: str) -> None:
    # Python's int() reads the Arabic-Indic three; Redis' HINCRBY does not, and would fail the script.
    assert check_fields({"name": "ok", "atm": value}).problem == f"field 'atm' is not an integer ({value!a})"
    assert repairs({"atm": value}) == {"atm": "0"}


def test_only_counters_that_are_not_integers_are_repaired() -> None:
    assert repairs({"atm": "two", "ats": "3", "timestamp": "x"}) == {"atm": "0"}
    assert repairs({"atm": "1"}) == {}
