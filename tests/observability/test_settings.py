"""Observability settings: global metric labels from CONVEYOR_METRICS_LABELS, validated."""

from __future__ import annotations

import pytest

from conveyor.config.errors import ConfigError
from conveyor.observability import load_observability_settings


def test_metric_labels_are_read_as_name_value_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_METRICS_LABELS", "env=prod, instance=a")
    assert load_observability_settings().conveyor_metrics_labels == {"env": "prod", "instance": "a"}


@pytest.mark.parametrize("labels", ["env", "1env=x", "__name__=x", "queue=x", "job_type=x"])
def test_bad_or_reserved_metric_labels_are_refused_with_the_variable_named(labels: str) -> None:
    with pytest.raises(ConfigError, match="CONVEYOR_METRICS_LABELS"):
        load_observability_settings(conveyor_metrics_labels=labels)


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="CONVEYOR_LOG_FORMAT"):
        load_observability_settings(conveyor_log_format="xml")
