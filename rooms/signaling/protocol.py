"""The signaling protocol's frames (contract 1, docs/protocol.md): parsing and validation.

Everything a browser sends passes through here before any other code sees it. Each check
raises ProtocolError with the errorCode the client gets, so the consumer never has to guess
what went wrong and nothing malformed reaches the domain layer or the SFU.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sfu.contract import Source, is_source

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
# A client's answer to the server's newConsumer offer grows with the meeting: one m-line per
# remote track, 0.64 KB each in Chromium's, so 64 KiB is reached at about 50 people with camera
# and microphone (bench/renegotiation.py). While the server waits for an answer a frame may be
# this large; a request that large is still refused.
MAX_ANSWER_FRAME_BYTES = 1024 * 1024
MAX_ID_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 100
MAX_SOURCES = 8
# setConsumerView's width and height: an 8K display's width is the most that makes sense.
MAX_VIEW_PIXELS = 8192

# WebSocket close codes (docs/protocol.md). All in 4000-4999: daphne (autobahn) sends only 1000
# and 3000-4999, so RFC 6455's 1009 "too big" and 1011 "server error" never reached a browser.
# They mirror HTTP statuses so they are easy to remember.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_REMOVED = 4403
CLOSE_NOT_FOUND = 4404  # also "not allowed": an outsider cannot tell the two apart
CLOSE_REPLACED = 4409
CLOSE_ENDED = 4410
CLOSE_RATE_LIMITED = 4429
CLOSE_FRAME_TOO_BIG = 4413
CLOSE_SERVER_ERROR = 4500

_PEER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_SDP_LINE = re.compile(r"^[a-z]=[^\x00]*$")


class ProtocolError(Exception):
    """A frame or request the server refuses; `code` is the errorCode the client gets."""

    def __init__(self, code: str, reason: str, request_id: int | str | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    id: int | str
    method: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Response:
    id: int | str
    ok: bool
    data: dict[str, Any]
    error_code: str = ""
    error_reason: str = ""


Frame = Request | Response


# --- frames -------------------------------------------------------------------------------


def parse_frame(text: str, max_bytes: int = MAX_FRAME_BYTES) -> Frame:
    """A client's text frame as a Request or a Response (to a server request); `max_bytes`
    (MAX_ANSWER_FRAME_BYTES while an answer is awaited) bounds a response, MAX_FRAME_BYTES
    anything else.

    Clients send no notifications in protocol version 1, so a notification is refused like any
    other unexpected frame.
    """
    size = len(text)
    if size <= max_bytes:
        size = encoded_size(text)
    if size > max_bytes:
        raise ProtocolError("frame_too_big", f"frames are limited to {max_bytes} bytes")
    try:
        content = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed_json", "the frame is not valid JSON") from None
    if not isinstance(content, dict):
        raise ProtocolError("invalid_frame", "a frame must be a JSON object")
    request_id = _frame_id(content.get("id"))
    if not _is_valid_unicode(content):
        # A response's id is the server's own request's: it is not echoed back as an error's.
        answer_to = None if content.get("response") is True else request_id
        raise ProtocolError(
            "invalid_data", "text must be valid Unicode (no unpaired surrogates)", answer_to
        )
    if content.get("request") is True:
        if request_id is None:
            raise ProtocolError("invalid_frame", "a request needs an id (integer or string)")
        if size > MAX_FRAME_BYTES:
            raise ProtocolError(
                "frame_too_big", f"requests are limited to {MAX_FRAME_BYTES} bytes", request_id
            )
        method = content.get("method")
        if not isinstance(method, str) or not method or len(method) > MAX_ID_LENGTH:
            raise ProtocolError("invalid_frame", "a request needs a method", request_id)
        data = content.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ProtocolError("invalid_data", "data must be an object", request_id)
        return Request(id=request_id, method=method, data=data)
    if content.get("response") is True:
        if request_id is None:
            raise ProtocolError("invalid_frame", "a response needs the id of its request")
        ok = content.get("ok")
        if not isinstance(ok, bool):
            raise ProtocolError("invalid_frame", "a response needs ok: true or false")
        data = content.get("data", {})
        if not isinstance(data, dict):
            data = {}
        return Response(
            id=request_id,
            ok=ok,
            data=data,
            error_code=str(content.get("errorCode", ""))[:MAX_ID_LENGTH],
            error_reason=str(content.get("errorReason", ""))[:500],
        )
    raise ProtocolError("invalid_frame", "a frame must be a request or a response", request_id)


def _is_valid_unicode(content: object) -> bool:
    """JSON may escape half of a surrogate pair ("\\ud800"), which decodes to a string that no
    database, channel layer or browser can take: refused here, before any handler sees it."""
    try:
        json.dumps(content, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encoded_size(text: str) -> int:
    """The frame's size on the wire (UTF-8), which is what the limit is about."""
    return len(text.encode("utf-8", "surrogatepass"))


def _frame_id(value: object) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and -(2**53) <= value <= 2**53:
        return value
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    return None


def ok_response(request_id: int | str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"response": True, "id": request_id, "ok": True, "data": data or {}}


def error_response(request_id: int | str | None, code: str, reason: str) -> dict[str, Any]:
    return {
        "response": True,
        "id": request_id,
        "ok": False,
        "errorCode": code,
        "errorReason": reason,
    }


def notification(method: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"notification": True, "method": method, "data": data or {}}


def server_request(request_id: int, method: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"request": True, "id": request_id, "method": method, "data": data}


# --- request data -------------------------------------------------------------------------


def check_peer_id(value: object) -> str:
    if not isinstance(value, str) or not _PEER_ID.match(value):
        raise ProtocolError(
            "invalid_data", "peerId must be 1 to 64 letters, digits, '-' or '_' (a uuid)"
        )
    return value


def check_display_name(value: object) -> str:
    if not isinstance(value, str):
        raise ProtocolError("invalid_data", "displayName must be a string")
    name = _CONTROL_CHARACTERS.sub("", value).strip()
    if not name:
        raise ProtocolError("invalid_data", "displayName must not be empty")
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise ProtocolError(
            "invalid_data", f"displayName is limited to {MAX_DISPLAY_NAME_LENGTH} characters"
        )
    return name


def check_object_id(value: object, field: str) -> str:
    """A producer or consumer id as the SFU hands them out."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise ProtocolError("invalid_data", f"{field} must be a string of 1 to 64 characters")
    return value


def check_view_pixels(value: object, field: str) -> int:
    """A video's width or height on screen, in device pixels (0: not shown)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VIEW_PIXELS:
        raise ProtocolError(
            "invalid_data", f"{field} must be an integer from 0 to {MAX_VIEW_PIXELS} (pixels)"
        )
    return value


def check_sdp(value: object, *, kind: str) -> str:
    """Basic shape of an SDP offer or answer, before it goes anywhere near the SFU.

    Not a full parser (aiortc parses on the node); enough to refuse text that is not SDP, SDP
    without media, and SDP without the ICE credentials and DTLS fingerprint a peer connection
    cannot do without.
    """
    if not isinstance(value, str) or not value:
        raise ProtocolError("invalid_sdp", f"sdp must be the {kind} as a string")
    lines = [line for line in value.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0] != "v=0":
        raise ProtocolError("invalid_sdp", "sdp must start with v=0")
    for line in lines:
        if not _SDP_LINE.match(line):
            raise ProtocolError("invalid_sdp", "every sdp line must look like x=value")
    if not any(line.startswith("o=") for line in lines):
        raise ProtocolError("invalid_sdp", "sdp has no o= line")
    if not any(line.startswith("m=") for line in lines):
        raise ProtocolError("invalid_sdp", "sdp has no media section")
    if not any(line.startswith("a=ice-ufrag:") for line in lines):
        raise ProtocolError("invalid_sdp", "sdp has no ICE credentials (a=ice-ufrag)")
    if not any(line.startswith("a=fingerprint:") for line in lines):
        raise ProtocolError("invalid_sdp", "sdp has no DTLS fingerprint")
    return value


def sdp_mids(sdp: str) -> list[str]:
    return [
        line.removeprefix("a=mid:").strip()
        for line in sdp.replace("\r\n", "\n").split("\n")
        if line.startswith("a=mid:")
    ]


def check_sources(value: object, sdp: str) -> dict[str, Source]:
    """produce's {mid: "mic"|"camera"|"screen"}; every mid must exist in the offer."""
    if not isinstance(value, dict) or not value:
        raise ProtocolError("invalid_data", "sources must map each sent mid to its source")
    if len(value) > MAX_SOURCES:
        raise ProtocolError("invalid_data", f"at most {MAX_SOURCES} sources")
    mids = set(sdp_mids(sdp))
    sources: dict[str, Source] = {}
    for mid, source in value.items():
        if not is_source(source):
            raise ProtocolError("invalid_data", "a source must be mic, camera or screen")
        if mid not in mids:
            raise ProtocolError("invalid_data", f"mid {mid[:20]!r} is not in the offer")
        sources[mid] = source
    return sources


def field(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise ProtocolError("invalid_data", f"{name} is required")
    return data[name]
