"""The spec's `monitors:` section: defaults, and mistakes reported with file, line and field."""

from __future__ import annotations

import pytest

from steward.core.errors import SpecError
from steward.monitor.consumer import series_configs
from steward.spec import load_spec_text

BASE = "name: desk\nmodel: scripted\n"


def test_a_section_becomes_one_series_config_per_metric() -> None:
    text = BASE + (
        "monitors:\n"
        "  arl0: 500\n"
        "  warmup: 300\n"
        "  metrics:\n"
        "    latency: {shift_percent: 20}\n"
        "    accuracy: {shift: 0.02, chart: ewma, warmup: 1000}\n"
        "    confidence:\n"
    )
    monitors = load_spec_text(text, "desk.yaml").spec.monitors
    assert monitors is not None
    configs = series_configs(monitors)
    assert configs["latency"].arl0 == 500 and configs["latency"].warmup == 300
    assert configs["latency"].shift_percent == 20 and configs["latency"].chart == "cusum"
    assert configs["accuracy"].chart == "ewma" and configs["accuracy"].warmup == 1000
    assert configs["confidence"].shift is None and configs["confidence"].shift_sigma is None


@pytest.mark.parametrize(
    ("section", "where"),
    [
        (
            "  metrics:\n    latency: {shift: 1, shift_percent: 20}\n",
            "desk.yaml:5:25: monitors.metrics.latency.shift_percent: give one of",
        ),
        ("  metrics:\n    speed: {}\n", "desk.yaml:5:5: monitors.metrics.speed.[key]:"),
        ("  arl0: 2\n  metrics: {latency: {}}\n", "desk.yaml:4:3: monitors.arl0:"),
        (
            "  metrics:\n    accuracy: {shift: 2}\n",
            "desk.yaml:5:16: monitors.metrics.accuracy.shift: a rate's shift is a fraction",
        ),
        ("  metrics: {}\n", "desk.yaml:4:3: monitors.metrics:"),
        ("  webhook: ftp://x\n  metrics: {cost: {}}\n", "desk.yaml:4:3: monitors.webhook:"),
        (
            "  metrics:\n    cost: {chart: shewhart}\n",
            "desk.yaml:5:12: monitors.metrics.cost.chart:",
        ),
    ],
)
def test_mistakes_name_file_line_and_field(section: str, where: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(BASE + "monitors:\n" + section, "desk.yaml")
    assert where in str(caught.value)
