"""The guard: section is read into profiles, routes and templates, or refused with
messages naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.config import ConfigError, load_settings

BASE = """
deployments:
  sim: {provider: openai, model: gpt-4o-mini, api_base: "http://127.0.0.1:9/v1"}
models:
  bot: [sim]
"""


def load(tmp_path: Path, guard: str) -> object:
    path = tmp_path / "seawall.yaml"
    path.write_text(BASE + guard)
    return load_settings(path, {})


def problems(tmp_path: Path, guard: str) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, guard)
    return refused.value.problems


def test_profiles_routes_and_templates_are_read(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
guard:
  tiers: {guest: strict}
  profiles:
    mine:
      classifier: true
      actions: {"injection.*": block, classifier: hold}
      output: {pii: [email], canary: true}
  routes:
    bot:
      profile: mine
      safe_profile: strict
      template: support
      version: v2
      safe_version: v1
      variables: {company: Acme}
  prompts:
    support:
      v1: "Help {{ company }} customers."
      v2: {system: "Help {{ company }} customers with {{ topic }}.", variables: {topic: orders}}
  strikes: {max_strikes: 2, block_seconds: [60, 120]}
  revert: {threshold: 5, scope: global}
""",
    )
    guard = settings.guard  # type: ignore[attr-defined]
    mine = guard.profiles["mine"]
    assert mine.action_for("injection.role_marker") == "block"
    assert mine.action_for("classifier") == "hold"
    assert mine.action_for("unicode.zero_width") == "flag"  # the default action
    assert mine.output.pii == frozenset({"email"}) and mine.output.canary
    assert guard.profiles["strict"].classifier  # built-in profiles stay
    assert guard.tiers == {"guest": "strict"}
    assert guard.prompts["support"].render("v2", {"company": "Acme"}).text == (
        "Help Acme customers with orders."
    )
    assert guard.strikes.block_seconds == (60.0, 120.0)
    assert guard.revert.threshold == 5 and guard.revert.scope == "global"


def test_mistakes_are_named_by_key(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
guard:
  tiers: {nobody: strict, guest: missing}
  profiles:
    mine: {actions: {"injection.*": explode}, output: {pii: [passport]}}
  routes:
    bot: {profile: nope, template: support, version: v9, variables: {colour: red}}
    ghost: {profile: mine, separation: true}
  prompts:
    support: {v1: "Help {{ company }}."}
  strikes: {block_seconds: []}
""",
    )
    text = "\n".join(found)
    for expected in (
        "guard.tiers.nobody: unknown tier",
        "guard.tiers.guest: unknown profile 'missing'",
        "guard.profiles.mine.actions.injection.*: must be one of allow, flag, hold, block",
        "guard.profiles.mine.output.pii: pii names unknown kinds ['passport']",
        "guard.routes.bot.profile: unknown profile 'nope'",
        "guard.routes.bot.version: template 'support' has no version 'v9'",
        "guard.routes.bot.variables.colour: no version of the template uses it",
        "guard.routes.ghost: unknown model 'ghost'",
        "guard.routes.ghost.separation: needs a template",
        "guard.strikes.block_seconds: must be a list of positive seconds",
    ):
        assert expected in text, (expected, found)


def test_a_missing_template_variable_stops_the_start(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
guard:
  routes:
    bot: {template: support, version: v1}
  prompts:
    support: {v1: "Help {{ company }}."}
""",
    )
    assert any("guard.routes.bot.version" in p and "company" in p for p in found), found
