"""PromQL text, as the shipped rules and dashboards write it: metric names and Grafana variables."""

from __future__ import annotations

import re

# Strings first: a label value or regex may hold anything, identifiers included.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
# Then what holds label names, durations or nothing a metric can be: matchers,
# ranges and subqueries, grouping clauses.
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
# An identifier not glued to a number before it (5m, 1e3, 0x1f), and whether a call follows.
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "atan2",
        "inf",
        "nan",
    }
)

# Grafana's interval variables, as a typical dashboard resolves them.
_GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (not functions, keywords or label names)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(" ", text)
    return {
        match[1]
        for match in _IDENTIFIER.finditer(text)
        if match[2] is None and match[1].lower() not in _KEYWORDS
    }


def grafana_variables(expr: str) -> set[str]:
    """The dashboard variables ``expr`` uses (``$model``, ``${model}``), Grafana's own aside."""
    return {
        name
        for braced, bare in _GRAFANA_VARIABLE.findall(expr)
        if not (name := braced or bare).startswith("__")
    }


def as_promql(expr: str) -> str:
    """``expr`` as Prometheus receives it with every variable set to All (``.*``)."""
    for variable, value in _GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, value)
    return _GRAFANA_VARIABLE.sub(".*", expr)
