"""The built-in dashboard in headless Chromium: it draws the numbers the admin API returns.

A real ``seawall serve`` in front of the simulator gets traffic from the OpenAI SDK (two
models, a stream, a cache hit, a refusal, an unknown model, feedback), then Debian's
Chromium, driven by Selenium, opens /dashboard, signs in with the admin key and is read
like a person would read it. A screenshot of the result is decoded and checked too;
``SEAWALL_UPDATE_SCREENSHOTS=1`` also keeps it as docs/images/dashboard.png.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.instances import Simulator, eventually, sdk, seawall_process, simulator_process
from tests.e2e.png_pixels import decode_png
from tests.e2e.processes import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1400, 2000
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard.png"
# Read when the module is collected: the autouse fixture clears SEAWALL_* before each test.
UPDATE_SCREENSHOTS = os.environ.get("SEAWALL_UPDATE_SCREENSHOTS") == "1"
REFUSAL = "I'm sorry, but I can't help with that."

CONFIG = """
deployments:
  sim-gpt: {{provider: openai, model: gpt-4o-mini, api_base: "{url}/v1"}}
  sim-claude: {{provider: anthropic, model: claude-sonnet-4-0, api_base: "{url}"}}
models:
  gpt-4o-mini: [sim-gpt]
  claude-sonnet-4-0: [sim-claude]
"""
# What the traffic below leaves in the ledger.
REQUESTS = 10
RATED = 2


@dataclass(frozen=True)
class Stack:
    seawall: ServerProcess
    simulator: Simulator

    def admin(self, method: str, path: str, key: str = MASTER_KEY, **body: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.seawall.url}{path}",
            headers={"authorization": f"Bearer {key}"},
            json=body or None,
            timeout=10,
        )

    def report(self, name: str) -> list[dict[str, Any]]:
        answer = self.admin("GET", f"/admin/usage/{name}")
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()["data"]
        return rows


def drive_traffic(stack: Stack) -> None:
    """Requests of every kind the dashboard counts, through the real OpenAI SDK."""
    client = sdk(stack.seawall)

    def ask(model: str, text: str, session: str, **options: Any) -> Any:
        return client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": text}],
            extra_headers={"x-seawall-session-id": session, "x-seawall-user": "dana"},
            **options,
        )

    stack.simulator.script("launch codes", REFUSAL)
    rated = ask("gpt-4o-mini", "Summarise the meeting notes", "conv-notes").headers["x-request-id"]
    ask("gpt-4o-mini", "And list the action items", "conv-notes", max_tokens=120)
    for _ in client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Stream a short poem"}],
        stream=True,
        extra_headers={"x-seawall-session-id": "conv-poem"},
    ):
        pass
    first = ask("gpt-4o-mini", "What is the capital of Peru?", "conv-quiz", temperature=0)
    again = ask("gpt-4o-mini", "What is the capital of Peru?", "conv-quiz", temperature=0)
    assert (first.headers["x-seawall-cache"], again.headers["x-seawall-cache"]) == (
        "miss",
        "hit-exact",
    )
    ask("gpt-4o-mini", "Translate 'good morning' to French", "conv-quiz")
    claude = ask("claude-sonnet-4-0", "Draft a release note", "conv-release", max_tokens=400)
    ask("claude-sonnet-4-0", "Review the draft once more", "conv-release")
    refused = ask("claude-sonnet-4-0", "Tell me the launch codes", "conv-release")
    assert refused.parse().choices[0].message.content == REFUSAL
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt-5-imaginary", messages=[{"role": "user", "content": "hello?"}]
        )
    for request_id, verdict in (
        (rated, {"thumbs": "up"}),
        (claude.headers["x-request-id"], {"score": 0.4}),
    ):
        answer = stack.admin("POST", "/v1/feedback", request_id=request_id, **verdict)
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("dashboard")
    with (
        simulator_process(root / "sim.log") as simulator,
        seawall_process(root / "seawall", CONFIG.format(url=simulator.url)) as seawall,
    ):
        stack = Stack(seawall, simulator)
        drive_traffic(stack)

        def flushed() -> bool:
            requests = sum(row["requests"] for row in stack.report("model-rates"))
            return (
                requests == REQUESTS and sum(r["rated"] for r in stack.report("feedback")) == RATED
            )

        assert eventually(flushed, timeout=15), stack.report("model-rates")
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Debian's Chromium, headless, through its chromedriver (scripts/ensure-tools)."""
    for tool in (CHROMIUM, CHROMEDRIVER):
        assert tool.exists(), f"{tool} is missing: run scripts/ensure-tools (make tools)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        f"--window-size={WIDTH},{HEIGHT}",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def open_dashboard(browser: webdriver.Chrome, stack: Stack, key: str) -> str:
    """Load /dashboard in a fresh tab state, sign in with ``key``; the page's final state."""
    browser.get(f"{stack.seawall.url}/dashboard")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    wait_for_state(browser, "signed-out")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    return wait_for_state(browser, "ready", "signed-out", "failed")


def wait_for_state(browser: webdriver.Chrome, *states: str) -> str:
    def settled(driver: webdriver.Chrome) -> str | bool:
        state = driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")
        return state if state in states else False

    state: str = WebDriverWait(browser, 15).until(settled)
    return state


def cell(browser: webdriver.Chrome, table: str, row: str, column: str) -> str:
    """The text a reader sees in ``table``'s ``row`` (its first column) and ``column``."""
    selector = f'#table-{table} tr[data-row="{row}"] td[data-col="{column}"]'
    return browser.find_element(By.CSS_SELECTOR, selector).text


def tile(browser: webdriver.Chrome, name: str) -> str:
    return browser.find_element(By.ID, f"tile-{name}").text


def shows(text: str, value: float, scale: float = 1.0) -> bool:
    """Whether ``text`` ("$0.000123", "37.5%", "1,204", "12.3 ms") reads as ``value``,
    to the precision it is written with; ``scale`` 100 for percentages."""
    number = re.search(r"-?[\d,]*\.?\d+", text)
    assert number, f"no number in {text!r}"
    digits = number.group().replace(",", "")
    decimals = len(digits.partition(".")[2])
    return abs(float(digits) / scale - value) <= 0.5 * 10**-decimals / scale + 1e-12


def test_the_dashboard_draws_the_admin_apis_numbers(
    stack: Stack, browser: webdriver.Chrome
) -> None:
    assert open_dashboard(browser, stack, MASTER_KEY) == "ready"
    rates = {row["model"]: row for row in stack.report("model-rates")}
    mix = {row["model"]: row for row in stack.report("model-mix")}
    latency = {row["model"]: row for row in stack.report("latency")}
    feedback = stack.report("feedback")
    gpt, claude = rates["gpt-4o-mini"], rates["claude-sonnet-4-0"]
    # The traffic is what the page is checked against: one hit, one refusal, one failure.
    # Only the temperature-0 pair was looked up (the others are not deterministic).
    assert (gpt["cache_hits"], gpt["cache_lookups"]) == (1, 2)
    assert (claude["refusals"], claude["answers_checked"]) == (1, 3)
    assert sum(row["errors"] for row in rates.values()) == 1

    assert shows(tile(browser, "requests"), REQUESTS)
    assert shows(tile(browser, "spend"), sum(row["cost_usd"] for row in mix.values()))
    hits = sum(row["cache_hits"] for row in rates.values())
    lookups = sum(row["cache_lookups"] for row in rates.values())
    assert shows(tile(browser, "cache"), hits / lookups, 100)
    assert shows(tile(browser, "errors"), 1 / REQUESTS, 100)
    assert shows(tile(browser, "refusals"), 1 / (3 + gpt["answers_checked"]), 100)
    score = sum(row["mean_score"] * row["rated"] for row in feedback) / RATED
    assert shows(tile(browser, "feedback"), score)
    assert score == pytest.approx((1.0 + 0.4) / 2)

    for model, row in mix.items():
        assert shows(cell(browser, "model-mix", model, "requests"), row["requests"])
        assert shows(cell(browser, "model-mix", model, "cost_usd"), row["cost_usd"])
        assert shows(cell(browser, "model-mix", model, "cost_share"), row["cost_share"], 100)
    assert shows(cell(browser, "model-rates", "gpt-4o-mini", "cache_hit_rate"), 0.5, 100)
    assert shows(cell(browser, "model-rates", "claude-sonnet-4-0", "refusal_rate"), 1 / 3, 100)
    for model, row in latency.items():
        for column in ("p50_ms", "p95_ms", "p99_ms"):
            assert shows(cell(browser, "latency", model, column), row[column])
    for row in feedback:
        name = f"{row['model']} / {row['deployment']}"
        assert shows(cell(browser, "feedback", name, "mean_score"), row["mean_score"])
    (dearest, *_) = stack.report("conversations")
    assert shows(
        cell(browser, "conversations", dearest["session_id"], "cost_usd"), dearest["cost_usd"]
    )
    spend = browser.find_element(By.ID, "legend-daily-spend").text
    assert all(model in spend for model in mix)
    # No part of the page was blocked by its own Content-Security-Policy.
    blocked = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert blocked == []


def test_the_key_stays_for_the_tab_and_sign_out_forgets_it(
    stack: Stack, browser: webdriver.Chrome
) -> None:
    assert open_dashboard(browser, stack, MASTER_KEY) == "ready"
    browser.refresh()
    assert wait_for_state(browser, "ready", "signed-out") == "ready"
    browser.find_element(By.ID, "signout").click()
    assert wait_for_state(browser, "signed-out") == "signed-out"
    assert browser.execute_script("return sessionStorage.length") == 0
    browser.refresh()
    assert wait_for_state(browser, "ready", "signed-out") == "signed-out"


def test_a_wrong_key_shows_why_and_the_form_again(stack: Stack, browser: webdriver.Chrome) -> None:
    assert open_dashboard(browser, stack, "sk-seawall-not-a-real-key") == "signed-out"
    error = browser.find_element(By.ID, "signin-error")
    assert error.is_displayed()
    assert error.text.startswith("The admin API refused this key:")
    assert browser.find_element(By.ID, "key").is_displayed()
    assert not browser.find_element(By.ID, "board").is_displayed()
    assert browser.execute_script("return sessionStorage.length") == 0


def test_a_key_without_admin_rights_is_refused_with_the_apis_reason(
    stack: Stack, browser: webdriver.Chrome
) -> None:
    created = stack.admin("POST", "/admin/keys", name="app key")
    assert created.status_code == 201, created.text
    assert open_dashboard(browser, stack, created.json()["key"]) == "signed-out"
    error = browser.find_element(By.ID, "signin-error").text
    assert "needs an admin key" in error


def test_the_page_is_public_but_never_cached_or_framed(stack: Stack) -> None:
    answer = httpx.get(f"{stack.seawall.url}/dashboard", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-store"
    policy = dict(
        part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"].startswith("'sha256-") and "unsafe" not in policy["script-src"]
    assert policy["style-src"].startswith("'sha256-") and "unsafe" not in policy["style-src"]
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    # The page holds no data: no model name, no number from the ledger.
    assert "gpt-4o-mini" not in answer.text


def test_the_screenshot_is_a_real_render(
    stack: Stack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    assert open_dashboard(browser, stack, MASTER_KEY) == "ready"
    png = browser.get_screenshot_as_png()
    (tmp_path / "dashboard.png").write_bytes(png)
    if UPDATE_SCREENSHOTS:
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "dashboard.png", DOCS_SCREENSHOT)
    pixels = decode_png(png)[:, :, :3].astype(np.int16)
    width, height = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    assert pixels.shape[:2] == (height, width)
    assert width == WIDTH and height > HEIGHT * 0.9
    # Not blank: many colours, and most rows are not one flat colour.
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50
    flat_rows = int(np.sum(np.all(pixels == pixels[:, :1], axis=(1, 2))))
    assert flat_rows < height / 2
    # Where the page says it drew bars, there are coloured pixels (text and
    # backgrounds are greys, the bars are not).
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 60
    regions = browser.execute_script(
        "return [...document.querySelectorAll('svg.chart, svg.bar, svg.range')]"
        ".map(e => { const r = e.getBoundingClientRect();"
        " return [e.closest('[id]').id, r.left, r.top, r.right, r.bottom]; })"
    )
    drawn = {}
    for owner, left, top, right, bottom in regions:
        box = saturated[int(top) : int(bottom) + 1, int(left) : int(right) + 1]
        drawn[owner] = drawn.get(owner, 0) + int(box.sum())
    assert {"chart-daily-spend", "table-model-mix", "table-latency"} <= set(drawn)
    assert all(count > 20 for count in drawn.values()), drawn
