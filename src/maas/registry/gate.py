"""Validation gate: rules a version's metrics must pass before it may become production.

Rules are plain data kept per model::

    [{"metric": "accuracy", "min": 0.95},
     {"metric": "accuracy", "max_drop_vs_production": 0.01},
     {"metric": "latency_ms_per_sample_batch_1", "max": 2.0},
     {"metric": "accuracy", "max_drop_vs_parent": 0.01}]

``min``/``max`` bound the candidate's own value; ``max_drop_vs_production`` bounds how
much worse than the version now under ``production`` it may be (lower is worse; a model
with no production version passes that rule). ``max_drop_vs_parent`` bounds how much
worse an optimised version is than the version it was made from, as its optimisation
report measured both on the same rows and machine (``metrics.optimization.parent``); a
version that was not made by an optimisation passes that rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from maas.errors import InvalidInputError

__all__ = ["check_rules", "failed_rules", "parent_metrics"]

_BOUNDS: Final = ("min", "max", "max_drop_vs_production", "max_drop_vs_parent")


def check_rules(rules: Any) -> list[dict[str, Any]]:
    """Validate a rule list; errors name the rule (``rules[1].min: ...``)."""
    if not isinstance(rules, list):
        raise InvalidInputError("rules: must be a list of {metric, min|max|max_drop_vs_production}")
    checked = []
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if not isinstance(rule, dict) or not isinstance(rule.get("metric"), str):
            raise InvalidInputError(f"{where}.metric: a metric name is required")
        bounds = [key for key in rule if key != "metric"]
        if len(bounds) != 1 or bounds[0] not in _BOUNDS:
            raise InvalidInputError(
                f"{where}: exactly one of {', '.join(_BOUNDS)} is required, got {bounds}"
            )
        value = rule[bounds[0]]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"{where}.{bounds[0]}: must be a number")
        checked.append({"metric": rule["metric"], bounds[0]: float(value)})
    return checked


def parent_metrics(candidate: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The parent's metrics as an optimised version's report measured them, else None."""
    report = candidate.get("optimization")
    parent = report.get("parent") if isinstance(report, Mapping) else None
    return parent if isinstance(parent, Mapping) else None


def _drop(
    metric: str, value: float, bound: float, reference: Mapping[str, Any] | None, whose: str
) -> list[str]:
    current = None if reference is None else reference.get(metric)
    if not isinstance(current, int | float) or isinstance(current, bool):
        return []
    if current - value <= bound:
        return []
    return [
        f"{metric} {value:.4g} is {current - value:.4g} below {whose} {current:.4g} "
        f"(allowed drop {bound:.4g})"
    ]


def failed_rules(
    rules: Sequence[Mapping[str, Any]],
    candidate: Mapping[str, Any],
    production: Mapping[str, Any] | None,
) -> list[str]:
    """The rules ``candidate``'s metrics fail, each as a sentence; empty when all pass."""
    failures = []
    for rule in rules:
        metric = rule["metric"]
        value = candidate.get(metric)
        if not isinstance(value, int | float) or isinstance(value, bool):
            failures.append(f"{metric}: the version has no {metric} metric")
            continue
        if "min" in rule and value < rule["min"]:
            failures.append(f"{metric} {value:.4g} < min {rule['min']:.4g}")
        if "max" in rule and value > rule["max"]:
            failures.append(f"{metric} {value:.4g} > max {rule['max']:.4g}")
        if "max_drop_vs_production" in rule:
            bound = rule["max_drop_vs_production"]
            failures += _drop(metric, value, bound, production, "production's")
        if "max_drop_vs_parent" in rule:
            bound = rule["max_drop_vs_parent"]
            failures += _drop(metric, value, bound, parent_metrics(candidate), "its parent's")
    return failures
