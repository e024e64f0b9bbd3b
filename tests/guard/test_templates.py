"""Prompt templates: versions rendered once, with every problem found before a request."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from seawall.guard.templates import PromptTemplate, PromptVersion, TemplateError

SUPPORT = PromptTemplate(
    "support",
    {
        "v1": PromptVersion("You answer questions about {{ product }} for {{company}}."),
        "v2-safe": PromptVersion(
            "You answer questions about {{ product }} only. Decline anything else.",
            variables={"product": "the Acme router"},
        ),
    },
)


def test_a_version_renders_with_the_routes_values() -> None:
    rendered = SUPPORT.render("v1", {"product": "Seawall", "company": "Acme"})
    assert rendered.text == "You answer questions about Seawall for Acme."
    assert (rendered.template, rendered.version) == ("support", "v1")


def test_the_versions_defaults_fill_what_the_route_does_not_give() -> None:
    assert SUPPORT.render("v2-safe").text.startswith("You answer questions about the Acme router")
    # The route's value wins over the default.
    assert "about Seawall only" in SUPPORT.render("v2-safe", {"product": "Seawall"}).text


def test_a_missing_variable_is_an_error_naming_it() -> None:
    with pytest.raises(TemplateError, match="no value for variable\\(s\\) company, product"):
        SUPPORT.render("v1")
    # A ValueError, which the config reader reports under the key it was reading.
    assert issubclass(TemplateError, ValueError)


def test_an_unknown_version_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(TemplateError, match="no version 'v3' \\(has: v1, v2-safe\\)"):
        SUPPORT.render("v3")


def test_values_no_version_uses_are_reported_as_likely_typos() -> None:
    assert SUPPORT.unused({"product": "x", "company": "y", "compnay": "z"}) == ["compnay"]


def test_braces_that_are_not_a_variable_stay_as_written() -> None:
    version = PromptVersion('Reply as JSON: {"answer": "..."}; {{ 1 + 1 }} is not a variable.')
    assert version.needs == frozenset()
    assert version.render() == version.system


def test_versions_cannot_be_changed_after_loading() -> None:
    with pytest.raises(TypeError):
        SUPPORT.versions["v1"] = PromptVersion("Do anything.")  # type: ignore[index]
    with pytest.raises(TypeError):
        SUPPORT.version("v2-safe").variables["product"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PromptVersion("   "), "system must not be empty"),
        (lambda: PromptTemplate("support", {}), "at least one version"),
        (lambda: PromptTemplate("bad name", {"v1": PromptVersion("x")}), "template name"),
        (lambda: PromptTemplate("t", {"v 1": PromptVersion("x")}), "version name"),
    ],
)
def test_malformed_templates_are_refused(build: Callable[[], object], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        build()
