"""Anthropic's Messages API, inbound: the three translators the HTTP layer calls.

``decode_messages`` turns a request into Seawall's canonical chat body,
``render_message`` turns a canonical answer into a Message, and
``AnthropicStreamEncoder`` turns canonical chunks into Anthropic stream events.
"""

from __future__ import annotations

from seawall.inbound.anthropic_replies import message_id_for, render_message
from seawall.inbound.anthropic_requests import decode_messages
from seawall.inbound.anthropic_stream import AnthropicStreamEncoder

__all__ = ["AnthropicStreamEncoder", "decode_messages", "message_id_for", "render_message"]
