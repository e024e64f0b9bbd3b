"""``seawall review list|approve ID|reject ID``: the guard's review queue, via the admin API.

Decisions update the sender's strikes, which a running gateway may keep in its own
memory (no Redis), so the CLI asks the gateway (``/admin/guard/reviews``) rather than
writing to the database. The admin key comes from ``SEAWALL_ADMIN_KEY`` (or
``SEAWALL_MASTER_KEY``), as for ``seawall cache warm``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from seawall.guard.detection import excerpt

DEFAULT_URL = "http://127.0.0.1:8080"
# Seconds to wait for the gateway's answer.
TIMEOUT_SECONDS = 30.0


class AdminCallFailed(Exception):
    """The admin API could not be reached or refused the call (the message says why)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        # The HTTP status of a refusal; None when the gateway was not reached.
        self.status = status


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``review``."""
    review = subparsers.add_parser("review", help="list, approve and reject held requests")
    actions = review.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    listing = _action(actions, "list", "list requests awaiting review, oldest first")
    listing.add_argument("--tenant", help="only this tenant's requests")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.set_defaults(func=_list)
    for name, help_text in (
        ("approve", "the request was fine: forgive the strike it earned"),
        ("reject", "the request was an attack: keep its strike and add one"),
    ):
        decide = _action(actions, name, help_text)
        decide.add_argument("review_id", metavar="ID")
        decide.add_argument("--note", help="why (kept with the decision)")
        decide.add_argument("--reviewer", help="who decides (default: your login name)")
        decide.add_argument("--tenant", help="refuse unless the request is this tenant's")
        decide.set_defaults(func=_decide, decision=name)


def _action(
    actions: argparse._SubParsersAction[Any], name: str, help_text: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(
        name, help=help_text, description=help_text
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the running gateway ({DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _list(args: argparse.Namespace) -> int:
    query = {"limit": str(args.limit)}
    if args.tenant:
        query["tenant"] = args.tenant
    path = "/admin/guard/reviews?" + urllib.parse.urlencode(query)
    try:
        result = admin_call(args.url, "GET", path)
    except AdminCallFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result["data"], indent=2, ensure_ascii=False))
        return 0
    if not result["data"]:
        print("no requests await review")
    for item in result["data"]:
        print(review_line(item))
    return 0


def _decide(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"reviewer": args.reviewer or _login_name()}
    if args.note:
        body["note"] = args.note
    if args.tenant:
        body["tenant"] = args.tenant
    review_id = urllib.parse.quote(args.review_id, safe="")
    try:
        result = admin_call(
            args.url, "POST", f"/admin/guard/reviews/{review_id}/{args.decision}", body
        )
    except AdminCallFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        # Like the other commands: 1 when what was asked about does not exist.
        return 1 if exc.status == 404 else 2
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"{result['status']} {result['id']}{_strikes_note(result)}")
    return 0


def admin_call(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One admin API call with the admin key from the environment; its JSON answer."""
    key = os.environ.get("SEAWALL_ADMIN_KEY") or os.environ.get("SEAWALL_MASTER_KEY")
    if not key:
        raise AdminCallFailed("set SEAWALL_ADMIN_KEY (or SEAWALL_MASTER_KEY) to an admin key")
    request = urllib.request.Request(
        f"{url.rstrip('/')}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AdminCallFailed(_error_message(exc), exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        raise AdminCallFailed(f"cannot reach {url}: {exc}") from None


def review_line(item: dict[str, Any]) -> str:
    """One held request on one line: id, when, whose, which rules, what it said."""
    held = datetime.fromtimestamp(item["created_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
    rules = ",".join(f"{found['rule']}({found['score']:.2f})" for found in item["rules"])
    user = item["user"] or "-"
    return f"{item['id']}  {held}  {item['tenant']}/{user}  {rules}  {_last_user_text(item)}"


def _last_user_text(item: dict[str, Any]) -> str:
    """The last user message's text, shortened (what a reviewer reads first)."""
    for message in reversed(item["messages"]):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(
                str(part.get("text", "")) for part in content if isinstance(part, dict)
            )
        return json.dumps(excerpt(str(content or "")), ensure_ascii=False)
    return ""


def _strikes_note(result: dict[str, Any]) -> str:
    strikes = result.get("strikes")
    if strikes is None:
        return " (no end user: no strikes)"
    blocked = f"blocked for {strikes['retry_after']:.0f} s" if strikes["blocked"] else "not blocked"
    return f" ({result['tenant']}/{result['user']}: {strikes['strikes']} strike(s), {blocked})"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _error_message(error: urllib.error.HTTPError) -> str:
    """The OpenAI-shaped error's message, or the status line."""
    try:
        message: str = json.loads(error.read())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"{error.code} {error.reason}"
    return message
