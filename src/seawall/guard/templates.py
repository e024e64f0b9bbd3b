"""Prompt templates: a named system prompt in immutable versions, rendered at start-up.

A ``PromptTemplate`` has named ``PromptVersion``s (see "Words we use": each edit is
a new version; a route names its current and its safe one). A version's ``system``
text may name variables as ``{{ name }}``; the version's ``variables`` give default
values and a route gives the rest (tenant name, product, tone...).

Rendering happens once, when configuration is loaded: ``render`` raises
``TemplateError`` (a ``ValueError``, which the config reader reports under the key it
was reading) for a variable with no value, so a typo fails ``seawall config check``
instead of the first request. The request path only reads ``RenderedPrompt.text``.

``{{ name }}`` and not ``${name}`` or ``{name}``: the config reader replaces
``${VAR}`` with environment variables before this module sees the text, and single
braces are common in prompts that show JSON. Text in double braces that is not a
name (``{{ 1 + 1 }}``) is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# A variable reference: {{ name }}, spaces optional.
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# What a template or version may be called (it appears in metrics and audit lines).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


class TemplateError(ValueError):
    """A template or version that cannot be rendered: unknown version, missing variable."""


def variable_names(text: str) -> frozenset[str]:
    """The variables ``text`` refers to."""
    return frozenset(_VARIABLE.findall(text))


def _frozen(values: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({str(name): str(value) for name, value in values.items()})


@dataclass(frozen=True, slots=True)
class PromptVersion:
    """One immutable system prompt; ``variables`` are default values for its ``{{ name }}``s."""

    system: str
    variables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.system.strip():
            raise TemplateError("system must not be empty")
        object.__setattr__(self, "variables", _frozen(self.variables))

    @property
    def needs(self) -> frozenset[str]:
        """Every variable the system text refers to."""
        return variable_names(self.system)

    def render(self, values: Mapping[str, str] | None = None) -> str:
        """The system text with every variable filled (``values`` win over defaults)."""
        merged = {**self.variables, **(values or {})}
        missing = sorted(self.needs - merged.keys())
        if missing:
            names = ", ".join(missing)
            raise TemplateError(f"no value for variable(s) {names}; set them under variables")
        return _VARIABLE.sub(lambda match: merged[match.group(1)], self.system)


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A version's final text, and which template and version it came from."""

    template: str
    version: str
    text: str


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A named system prompt and its versions, keyed by version name."""

    name: str
    versions: Mapping[str, PromptVersion]

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise TemplateError(f"template name {self.name!r} must match {_NAME.pattern}")
        if not self.versions:
            raise TemplateError("a template needs at least one version")
        for version in self.versions:
            if not _NAME.fullmatch(version):
                raise TemplateError(f"version name {version!r} must match {_NAME.pattern}")
        object.__setattr__(self, "versions", MappingProxyType(dict(self.versions)))

    def version(self, name: str) -> PromptVersion:
        """The version called ``name``; ``TemplateError`` naming the known ones if none is."""
        found = self.versions.get(name)
        if found is None:
            known = ", ".join(sorted(self.versions))
            raise TemplateError(f"template {self.name!r} has no version {name!r} (has: {known})")
        return found

    def render(self, version: str, values: Mapping[str, str] | None = None) -> RenderedPrompt:
        """Render one version with ``values``; raises ``TemplateError`` at config load."""
        text = self.version(version).render(values)
        return RenderedPrompt(self.name, version, text)

    def unused(self, values: Mapping[str, str]) -> list[str]:
        """Names in ``values`` that no version refers to (a typo, most likely)."""
        used: set[str] = set()
        for version in self.versions.values():
            used |= version.needs
        return sorted(set(values) - used)
