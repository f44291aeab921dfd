"""The SFU node's channel-layer envelope, shared by the node and its callers; the methods and
their data are sfu/contract.py's.

Request (to `sfu.<node>`):
    {"type": "sfu.request", "id": str, "method": str, "data": dict, "reply_to": channel}
Response (to `reply_to`):
    {"type": "sfu.response", "id": str, "ok": true, "data": dict}
    {"type": "sfu.response", "id": str, "ok": false, "error_code": str, "error_reason": str}

Channel delivery is at most once, so callers wait with a timeout and every method is safe to
retry. Code calls the node through sfu.client's typed client; `request()` is its transport (and
what bench/ and the tests' malformed requests use directly).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.layers import get_channel_layer

from sfu.app_settings import app_settings

REQUEST_TYPE = "sfu.request"
RESPONSE_TYPE = "sfu.response"
MAX_ID_LENGTH = 64


class SfuRequestError(Exception):
    """The node answered with an error, or did not answer in time."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class SfuRequest:
    id: str
    method: str
    data: dict[str, Any]
    reply_to: str


class MalformedRequest(ValueError):
    """A message on the node's channel that is not a well-formed request."""

    def __init__(self, reason: str, reply_to: str | None, request_id: str | None) -> None:
        super().__init__(reason)
        self.reply_to = reply_to
        self.request_id = request_id


def parse_request(message: object) -> SfuRequest:
    """Validate a channel message as a request, or raise MalformedRequest saying why."""
    if not isinstance(message, dict):
        raise MalformedRequest("message is not an object", None, None)
    reply_to = message.get("reply_to")
    if not isinstance(reply_to, str) or not reply_to or len(reply_to) > 200:
        reply_to = None
    request_id = message.get("id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_ID_LENGTH:
        raise MalformedRequest("id must be a non-empty string", reply_to, None)
    if message.get("type") != REQUEST_TYPE:
        raise MalformedRequest("type must be sfu.request", reply_to, request_id)
    if reply_to is None:
        raise MalformedRequest("reply_to must be a channel name", None, request_id)
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise MalformedRequest("method must be a non-empty string", reply_to, request_id)
    data = message.get("data", {})
    if not isinstance(data, dict):
        raise MalformedRequest("data must be an object", reply_to, request_id)
    return SfuRequest(id=request_id, method=method, data=data, reply_to=reply_to)


def ok_response(request_id: str, data: Mapping[str, object] | None = None) -> dict[str, Any]:
    return {"type": RESPONSE_TYPE, "id": request_id, "ok": True, "data": dict(data or {})}


def error_response(request_id: str | None, code: str, reason: str) -> dict[str, Any]:
    return {
        "type": RESPONSE_TYPE,
        "id": request_id or "",
        "ok": False,
        "error_code": code,
        "error_reason": reason,
    }


async def request(
    node_channel: str,
    method: str,
    data: Mapping[str, object] | None = None,
    *,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Send one request to a node and wait for its response on a fresh reply channel."""
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS is not configured"
    # The default "specific." prefix on purpose: channels_redis serves every process-local
    # channel of one prefix from one Redis list, and a coroutine holding the receive lock only
    # reads its own prefix's list; a second prefix (say "sfu-reply.") in a process that also
    # receives on a Channels consumer's "specific." channel would starve one of them.
    reply_to = await layer.new_channel()
    request_id = uuid.uuid4().hex
    await layer.send(
        node_channel,
        {
            "type": REQUEST_TYPE,
            "id": request_id,
            "method": str(method),  # a plain str on the wire, even for an SfuMethod
            "data": dict(data or {}),
            "reply_to": reply_to,
        },
    )
    timeout = app_settings.REQUEST_TIMEOUT_SECONDS if timeout is None else timeout
    try:
        async with asyncio.timeout(timeout):
            while True:
                reply = await layer.receive(reply_to)
                if reply.get("id") == request_id:
                    break
    except TimeoutError:
        raise SfuRequestError("timeout", f"{method} got no answer in {timeout:g} s") from None
    if not reply.get("ok"):
        raise SfuRequestError(
            str(reply.get("error_code", "error")), str(reply.get("error_reason", ""))
        )
    return dict(reply.get("data") or {})
