"""GET /dashboard: the built-in admin dashboard, one self-contained HTML page.

The page holds no data. In the browser it asks for an admin key, keeps it in the tab's
``sessionStorage`` and reads the usage reports from the admin API (``/admin/usage/...``)
with it, so the page itself can be public while every number stays behind the key.

Its style and script are inline, with no outside fonts or libraries, so the
Content-Security-Policy allows exactly those two blocks, by hash, and nothing else:
no other script, no inline event handler, no request to another origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

_ASSET = "dashboard.html"


class Dashboard:
    """The page, read once, and the headers it is served with."""

    def __init__(self) -> None:
        html = resources.files(__package__).joinpath(_ASSET).read_text(encoding="utf-8")
        self._body = html.encode()
        self._headers = {
            "cache-control": "no-store",
            "content-security-policy": content_security_policy(html),
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
        }

    async def page(self, request: Request) -> Response:
        """The dashboard page."""
        return HTMLResponse(self._body, headers=self._headers)


def content_security_policy(html: str) -> str:
    """A policy that allows the page's one inline style and one inline script, by hash."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {_inline_hash(html, 'script')}",
            f"style-src {_inline_hash(html, 'style')}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _inline_hash(html: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.DOTALL)
    if len(blocks) != 1:
        raise ValueError(f"{_ASSET} must have exactly one inline <{tag}>, not {len(blocks)}")
    digest = hashlib.sha256(blocks[0].encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"
