"""Signaling fuzz run: thousands of hostile frames over real sockets to a running daphne.

    .venv/bin/python bench/fuzz_signaling.py [--frames 10000] [--connections 20] [--seed N]
    .venv/bin/python bench/fuzz_signaling.py --quick        # 1,000 frames, a smoke run

Starts what a deployment runs, on 127.0.0.1 only: an embedded Redis (unless REDIS_URL is set),
a fresh SQLite database under var/ (migrated), one SFU node (`manage.py runsfu`, so joins really
reach a node and post-join requests are fuzzed too) and daphne (`python -m meet.web`) twice:
- the fuzz server, with the per-connection flood guard raised through the environment
  (SIGNALING_RATE_*), so the parser and the handlers are fuzzed rather than the limiter;
- the flood server, with the default limits, for one short phase showing that a flood is
  answered `rate_limited` and then closed 4429.

A host and a participant are signed in (session cookies); N raw WebSockets (the minimal client
below: no extra package) are opened with the right Origin and Host. Each sends its share of the
frames, generated from a fixed seed (printed; `--seed` repeats a run): every method of
docs/protocol.md with valid and wrong data (wrong types, huge strings, lone surrogates, deep
nesting, bad ids), unknown methods, malformed JSON, non-objects, notifications, responses to
nothing, and binary frames of random bytes. Each frame's expected answer follows the protocol:
a request with a usable id gets exactly one response with that id (ok, or an error with a
documented errorCode); a frame without a usable id gets one error with id null; a response
with a usable id and `ok` gets nothing. Two more connections send one frame over 64 KiB each
(text, binary): closed 4413. No other close is allowed.

After the run: /healthz answers 200 (with its detail, MEET_HEALTHZ_TOKEN), a fresh connection
joins the meeting, and no log line of daphne (or of the SFU node) is a traceback or an ERROR.
Prints a table and writes JSON to bench/results/fuzz-signaling-<UTC time>.json; exits 1 when a
check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import random
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"

HEALTHZ_TOKEN = f"fuzz-{uuid.uuid4().hex}"
RAISED_LIMITS = {
    "SIGNALING_RATE_PER_SECOND": "1000000",
    "SIGNALING_RATE_BURST": "1000000",
    "SIGNALING_RATE_CLOSE_AFTER": "1000000",
}
WINDOW = 8  # frames awaiting an answer per connection before it sends more
STALL_SECONDS = 30.0  # no answer at all for this long: the connection is stuck

# Every errorCode docs/protocol.md documents (general, per method, SFU, chat, moderation).
# internal_error is documented but means a server bug: it is counted as a failure.
DOCUMENTED_CODES = {
    "malformed_json", "invalid_frame", "invalid_data", "invalid_sdp", "unknown_method",
    "not_joined", "rate_limited", "busy", "not_allowed", "signed_out", "sfu_unavailable",
    "sfu_timeout", "unknown_producer", "unknown_consumer", "bad_sdp", "bad_request",
    "unknown_peer", "already_joined", "peer_id_taken", "removed", "meeting_locked", "lobby",
    "meeting_ended", "invalid_participant", "invalid_client_id", "invalid_text",
    "empty_message", "message_too_long", "invalid_since_id", "not_moderator", "not_in_call",
    "cannot_remove_host", "cannot_remove_self", "cannot_remove_cohost", "invalid_request_id",
    "request_not_found", "already_decided", "message_not_found", "invalid_message_id",
    "name_from_account",
    "internal_error",
}  # fmt: skip
NULL_ID_CODES = {"malformed_json", "invalid_frame", "invalid_data"}
ALLOWED_CLOSES = {4413, 4429}

METHODS = [
    "join", "produce", "closeProducer", "pauseProducer", "resumeProducer", "pauseConsumer",
    "resumeConsumer", "requestConsumerKeyFrame", "setConsumerView", "restartIce", "getStats",
    "changeDisplayName",
    "leave", "chatMessage", "chatHistory", "muteParticipant", "removeParticipant",
    "lockMeeting", "lobbyRequests", "admitEntry", "denyEntry", "deleteChatMessage",
    "endMeeting",
]  # fmt: skip
# endMeeting from a joined host would end the call for everyone (4410, by design): the host's
# connections never send it; the participant's get not_moderator / not_joined.
HOST_EXCLUDED = {"endMeeting"}

SDP = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
    "a=fingerprint:sha-256 00:11:22\r\na=setup:actpass\r\na=sendonly\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
)


# --- a minimal WebSocket client (RFC 6455 over asyncio streams) ----------------------------


def _mask(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    key = os.urandom(4)
    return head + key + _mask(payload, key)


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None  # the code of the server's close frame

    @classmethod
    async def open(cls, port: int, path: str, cookie: str) -> WebSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            f"Origin: http://127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Cookie: {cookie}",
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            writer.close()
            raise ConnectionError(f"handshake refused: {status.decode(errors='replace')}")
        return cls(reader, writer)

    def send(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.writer.write(encode_frame(0x1, payload.encode("utf-8")))
        else:
            self.writer.write(encode_frame(0x2, payload))

    async def recv(self) -> tuple[int, bytes] | None:
        """The next text (1) or binary (2) message; None once the server closed."""
        message = b""
        message_opcode = 0
        while True:
            try:
                first, second = await self.reader.readexactly(2)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(size)  # server frames are not masked
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 0
                with contextlib.suppress(ConnectionError, RuntimeError):
                    self.writer.write(encode_frame(0x8, payload[:2]))
                return None
            if opcode == 0x9:
                self.writer.write(encode_frame(0xA, payload))
                continue
            if opcode == 0xA:
                continue
            if opcode in (0x1, 0x2):
                message_opcode, message = opcode, payload
            else:
                message += payload
            if first & 0x80:
                return message_opcode, message

    async def close(self) -> None:
        try:
            self.writer.write(encode_frame(0x8, struct.pack("!H", 1000)))
            await asyncio.wait_for(self.writer.drain(), 5)
        except (ConnectionError, RuntimeError, TimeoutError):
            pass
        self.writer.close()


# --- frames --------------------------------------------------------------------------------


@dataclass
class Frame:
    payload: str | bytes
    kind: str  # what it was made as (for the table)
    # "id": one response with `id`; "null": one error with id null; "none": no answer
    expect: str
    id: int | str | None = None


def usable_id(value: object) -> int | str | None:
    """docs/protocol.md: an integer (|id| <= 2^53) or a string of 1 to 64 characters."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and -(2**53) <= value <= 2**53:
        return value
    if isinstance(value, str) and 0 < len(value) <= 64:
        return value
    return None


def valid_unicode(content: object) -> bool:
    try:
        json.dumps(content, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def expectation(text: str) -> tuple[str, int | str | None]:
    """What the protocol says this text frame gets back."""
    try:
        content = json.loads(text)
    except (ValueError, RecursionError):
        return "null", None
    if not isinstance(content, dict):
        return "null", None
    frame_id = usable_id(content.get("id"))
    if frame_id is None:
        return "null", None
    if not valid_unicode(content):
        # Refused before anything else, invalid_data; a response's id is not echoed back.
        return ("null", None) if content.get("response") is True else ("id", frame_id)
    if content.get("request") is True:
        return "id", frame_id
    if content.get("response") is True:
        # A response to nothing is dropped; without a boolean `ok` it is refused (id null).
        return ("none", frame_id) if isinstance(content.get("ok"), bool) else ("null", None)
    return "id", frame_id


class Generator:
    def __init__(self, rng: random.Random, connection: int, is_host: bool) -> None:
        self.rng = rng
        self.connection = connection
        self.is_host = is_host
        self.next_id = 1
        self.joins = 0

    def fresh_id(self) -> int | str:
        self.next_id += 1
        n = self.next_id
        return self.rng.choice([n, f"c{self.connection}-{n}", 2**53 - n, -n, "🦊" * 8 + str(n)])

    def bad_id(self) -> object:
        return self.rng.choice(
            [None, True, False, 1.5, 2**53 + 1, -(2**53) - 1, 10**30, "", "x" * 65, [], {}, [1]]
        )

    def junk(self, depth: int = 0) -> object:
        rng = self.rng
        choice = rng.randrange(18)
        if choice == 0:
            return None
        if choice == 1:
            return rng.choice([True, False])
        if choice == 2:
            return rng.choice([0, -1, 1, 2**31, 2**63, -(2**64), 10**100])
        if choice == 3:
            return rng.choice([1.5, -0.0, 1e308, 5e-324])
        if choice == 4:
            return ""
        if choice == 5:
            return "x" * rng.choice([65, 101, 1000, 20_000, 60_000])
        if choice == 6:
            return "\ud800" + "a\udfff" + "\ud83d"  # lone surrogates
        if choice == 7:
            return "".join(chr(rng.randrange(0, 0x110000)) for _ in range(rng.randrange(1, 40)))
        if choice == 8:
            return "\x00\x01\x1b[31m\u202e\ufeff\u200b" + "é" * rng.randrange(50)
        if choice == 9:
            return "🎉" * rng.randrange(1, 300)
        if choice == 10:
            return [] if depth > 2 else [self.junk(depth + 1) for _ in range(rng.randrange(4))]
        if choice == 11:
            return {} if depth > 2 else {str(self.junk(3))[:20]: self.junk(depth + 1)}
        if choice == 12:
            return self.nested(rng.choice([10, 100, 500]))
        if choice == 13:
            return str(uuid.UUID(int=rng.getrandbits(128)))
        if choice == 14:
            return rng.choice(["mic", "camera", "screen", "MIC", "0", "1"])
        if choice == 15:
            return SDP if rng.random() < 0.5 else "v=0\r\n" + "a=x\r\n" * rng.randrange(100)
        if choice == 16:
            return {"0": "mic"} if rng.random() < 0.5 else {str(i): "camera" for i in range(20)}
        return rng.randrange(-5, 1000)

    def nested(self, depth: int) -> object:
        value: object = 1
        for _ in range(depth):
            value = [value] if self.rng.random() < 0.5 else {"a": value}
        return value

    def valid_data(self, method: str) -> dict[str, Any]:
        rng = self.rng
        if method == "join":
            self.joins += 1
            return {"peerId": f"fuzz{self.connection}-{self.joins}", "displayName": "Fuzz"}
        if method == "produce":
            return {"sdp": SDP, "sources": {"0": "mic"}}
        if method in ("closeProducer", "pauseProducer", "resumeProducer"):
            return {"producerId": str(uuid.UUID(int=rng.getrandbits(128)))}
        if method in ("pauseConsumer", "resumeConsumer", "requestConsumerKeyFrame"):
            return {"consumerId": str(uuid.UUID(int=rng.getrandbits(128)))}
        if method == "setConsumerView":
            return {
                "consumerId": str(uuid.UUID(int=rng.getrandbits(128))),
                "width": rng.choice([0, 320, 1920]),
                "height": rng.choice([0, 180, 1080]),
            }
        if method == "changeDisplayName":
            return {"displayName": rng.choice(["Fuzz", "  Fuzz\x07 ", "Ωμέγα", "a" * 100])}
        if method == "chatMessage":
            return {"clientId": f"m{rng.getrandbits(40)}", "text": rng.choice(["hi", "é" * 50])}
        if method == "chatHistory":
            return rng.choice([{}, {"sinceId": rng.randrange(0, 100)}])
        if method in ("muteParticipant", "removeParticipant"):
            # Never a peer that is in the call: removing one would close it (4403, by design).
            return {"peerId": f"absent-{rng.getrandbits(32)}"}
        if method == "lockMeeting":
            return {"locked": rng.random() < 0.3}
        if method in ("admitEntry", "denyEntry"):
            return {"requestId": rng.randrange(1, 1000)}
        if method == "deleteChatMessage":
            return {"messageId": rng.randrange(1, 100)}
        return {}

    def request(self) -> dict[str, Any]:
        rng = self.rng
        methods = [m for m in METHODS if not (self.is_host and m in HOST_EXCLUDED)]
        roll = rng.random()
        if roll < 0.04:
            method = "join"  # joins often enough that the post-join handlers are fuzzed
        elif roll < 0.07:
            method = rng.choice(["foo", "JOIN", " join", "__init__", "m" * 64, "x" * 65, ""])
        else:
            method = rng.choice(methods)
        frame: dict[str, Any] = {"request": True, "id": self.fresh_id(), "method": method}
        data = self.valid_data(method) if method in METHODS else {}
        mode = rng.random()
        if (method == "join" and mode < 0.6) or mode < 0.3:
            frame["data"] = data
        elif mode < 0.55 and data:
            # One field wrong, the others right.
            key = rng.choice(list(data))
            frame["data"] = {**data, key: self.junk()}
        elif mode < 0.65 and data:
            key = rng.choice(list(data))
            frame["data"] = {k: v for k, v in data.items() if k != key}
        elif mode < 0.75:
            frame["data"] = self.junk()
        elif mode < 0.8:
            frame.pop("data", None)
        else:
            frame["data"] = {**data, str(self.junk(3))[:30]: self.junk()}
        if rng.random() < 0.05:
            frame["method"] = self.junk(3)
        return frame

    def make(self) -> Frame:
        rng = self.rng
        roll = rng.random()
        if roll < 0.10:
            size = rng.choice([0, 1, 2, 17, 1000, rng.randrange(1, 60_000)])
            return Frame(rng.randbytes(size), "binary", "null")
        if roll < 0.55:
            text = json.dumps(self.request())
            kind = "request"
        elif roll < 0.62:
            frame = self.request()
            frame["id"] = self.bad_id()
            if rng.random() < 0.2:
                frame.pop("id")
            text = json.dumps(frame)
            kind = "request, bad id"
        elif roll < 0.70:
            text = self.malformed()
            kind = "malformed JSON"
        elif roll < 0.74:
            text = self.deep()
            kind = "deep nesting"
        elif roll < 0.80:
            text = json.dumps(self.junk())
            kind = "not an object"
        elif roll < 0.87:
            response: dict[str, Any] = {"response": True, "id": self.fresh_id()}
            if rng.random() < 0.8:
                response["ok"] = rng.random() < 0.5
            if rng.random() < 0.5:
                response["data"] = self.junk()
            if rng.random() < 0.3:
                response["errorCode"] = self.junk()
            if rng.random() < 0.2:
                response["id"] = self.bad_id()
            text = json.dumps(response)
            kind = "response to nothing"
        elif roll < 0.92:
            other: dict[str, Any] = {"notification": True, "method": "newPeer", "data": {}}
            if rng.random() < 0.7:
                other["id"] = self.fresh_id()
            if rng.random() < 0.5:
                other["request"] = self.junk(3)
            text = json.dumps(other)
            kind = "notification / neither"
        else:
            text = self.unicode_request()
            kind = "unicode"
        expect, frame_id = expectation(text)
        return Frame(text, kind, expect, frame_id)

    def malformed(self) -> str:
        rng = self.rng
        good = json.dumps(self.request())
        return rng.choice(
            [
                good[: rng.randrange(len(good))],
                good + "}",
                good.replace('"', "'"),
                good.replace(":", "", 1),
                "{" * rng.randrange(1, 200),
                "",
                " ",
                "NaN",
                "[1,]",
                '{"request": true, "id": 1, "method": "join",}',
                "\x00" * rng.randrange(1, 50),
                good + good,
                '{"id": 1e999999}',
                '{"request": true, "id": 1' + "0" * 5000 + ', "method": "join"}',
            ]
        )

    def deep(self) -> str:
        rng = self.rng
        depth = rng.choice([900, 1100, 5000, 30_000])
        inner = "[" * depth + "]" * depth
        if rng.random() < 0.5:
            return inner
        frame_id = self.fresh_id()
        return (
            f'{{"request": true, "id": {json.dumps(frame_id)}, "method": "chatMessage",'
            f' "data": {{"clientId": "a", "text": {inner}}}}}'
        )

    def unicode_request(self) -> str:
        rng = self.rng
        method = rng.choice(["join", "changeDisplayName", "chatMessage", "join"])
        strange = rng.choice(
            [
                "\ud800",
                "a\udc00b",
                "\ud83d\ude00",
                "\u0000",
                "\uffff\ufffe",
                "\u202eevil",
                "😀" * 30,
                "e\u0301" * 60,
            ]
        )
        data: dict[str, Any] = self.valid_data(method) if method != "join" else {}
        if method == "join":
            self.joins += 1
            data = {"peerId": f"fuzz{self.connection}-{self.joins}", "displayName": strange}
        elif method == "chatMessage":
            data["text"] = strange
        else:
            data["displayName"] = strange
        frame = {"request": True, "id": self.fresh_id(), "method": method, "data": data}
        # ensure_ascii=False keeps non-ASCII as UTF-8; lone surrogates must stay \u-escaped
        # (a text frame has to be valid UTF-8).
        text = json.dumps(frame, ensure_ascii=rng.random() < 0.5)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(frame)
        return text


# --- a connection's run ------------------------------------------------------------------


@dataclass
class Tally:
    frames_text: int = 0
    frames_binary: int = 0
    requests: int = 0  # frames with a usable id that must get exactly one response with it
    expected_null: int = 0
    expected_nothing: int = 0
    responses: int = 0
    responses_null: int = 0
    notifications: Counter[str] = field(default_factory=Counter)
    server_requests: int = 0
    error_codes: Counter[str] = field(default_factory=Counter)
    null_codes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    unmatched: int = 0  # a response whose id was never sent or not awaited
    duplicates: int = 0
    missing: int = 0  # requests left without a response
    null_surplus: int = 0
    null_deficit: int = 0
    undocumented: list[dict[str, Any]] = field(default_factory=list)
    internal_errors: list[dict[str, Any]] = field(default_factory=list)
    closes: Counter[str] = field(default_factory=Counter)
    unexpected_closes: list[str] = field(default_factory=list)
    stalls: int = 0

    def merge(self, other: Tally) -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(value, Counter):
                mine.update(value)
            elif isinstance(value, list):
                mine.extend(value)
            else:
                setattr(self, name, mine + value)


class FuzzConnection:
    def __init__(self, ws: WebSocket, frames: list[Frame], tally: Tally) -> None:
        self.ws = ws
        self.frames = frames
        self.tally = tally
        self.pending: dict[int | str, str] = {}  # id -> the frame's text (for reports)
        self.answered: set[int | str] = set()
        self.null_outstanding = 0
        self.progress = asyncio.Event()
        self.last_frame = ""
        self.client_closed = False  # the client closed (1000); the server's echo is no close

    def outstanding(self) -> int:
        return len(self.pending) + max(0, self.null_outstanding)

    async def reader(self) -> None:
        tally = self.tally
        while True:
            message = await self.ws.recv()
            if message is None:
                break
            _opcode, payload = message
            try:
                content = json.loads(payload)
            except ValueError:
                tally.undocumented.append({"server_sent": payload[:200].decode(errors="replace")})
                continue
            if content.get("notification") is True:
                tally.notifications[str(content.get("method"))] += 1
            elif content.get("request") is True:
                tally.server_requests += 1
            elif content.get("response") is True:
                self.on_response(content)
            self.progress.set()
        code = self.ws.close_code
        if not self.client_closed:
            tally.closes[str(code) if code is not None else "dropped"] += 1
        elif code != 1000:
            tally.closes[f"{code} (answering the client's 1000)"] += 1
        self.progress.set()

    def on_response(self, content: dict[str, Any]) -> None:
        tally = self.tally
        tally.responses += 1
        frame_id = content.get("id")
        code = None if content.get("ok") is True else str(content.get("errorCode"))
        if code is None:
            tally.ok += 1
        else:
            tally.error_codes[code] += 1
        if frame_id is None:
            tally.responses_null += 1
            self.null_outstanding -= 1
            if code not in NULL_ID_CODES:
                tally.undocumented.append({"null_id_error": code, "after": self.last_frame[:300]})
            else:
                tally.null_codes[code] += 1
            return
        key = frame_id if not isinstance(frame_id, bool) else str(frame_id)
        if key in self.pending:
            sent = self.pending.pop(key)
            self.answered.add(key)
            if code is not None and code not in DOCUMENTED_CODES:
                tally.undocumented.append({"code": code, "frame": sent[:300]})
            if code == "internal_error":
                tally.internal_errors.append({"frame": sent[:500], "response": content})
        elif key in self.answered:
            tally.duplicates += 1
        else:
            tally.unmatched += 1

    async def run(self) -> None:
        tally = self.tally
        reading = asyncio.create_task(self.reader())
        try:
            for frame in self.frames:
                if reading.done():
                    break
                await self.wait_below(WINDOW, reading)
                if reading.done():
                    break
                if frame.expect == "id":
                    assert frame.id is not None
                    if frame.id in self.pending or frame.id in self.answered:
                        continue  # ids are unique per connection by construction
                    self.pending[frame.id] = str(frame.payload)
                    tally.requests += 1
                elif frame.expect == "null":
                    self.null_outstanding += 1
                    tally.expected_null += 1
                else:
                    tally.expected_nothing += 1
                if isinstance(frame.payload, bytes):
                    tally.frames_binary += 1
                else:
                    tally.frames_text += 1
                    self.last_frame = frame.payload
                tally.kinds[frame.kind] += 1
                self.ws.send(frame.payload)
                await self.ws.writer.drain()
            await self.wait_below(1, reading)
            await asyncio.sleep(0.5)  # anything extra arrives now
        except (ConnectionError, RuntimeError):
            pass
        tally.missing += len(self.pending)
        if self.null_outstanding > 0:
            tally.null_deficit += self.null_outstanding
        elif self.null_outstanding < 0:
            tally.null_surplus -= self.null_outstanding
        if self.ws.close_code is not None or reading.done():
            tally.unexpected_closes.append(
                f"closed {self.ws.close_code} after {self.last_frame[:200]!r}"
            )
        else:
            self.client_closed = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.ws.writer.write(encode_frame(0x8, struct.pack("!H", 1000)))
        try:
            await asyncio.wait_for(reading, 5)
        except TimeoutError:
            reading.cancel()
        self.ws.writer.close()

    async def wait_below(self, limit: int, reading: asyncio.Task[None]) -> None:
        while self.outstanding() >= limit and not reading.done():
            self.progress.clear()
            try:
                await asyncio.wait_for(self.progress.wait(), STALL_SECONDS)
            except TimeoutError:
                self.tally.stalls += 1
                return


# --- phases --------------------------------------------------------------------------------


async def fuzz_phase(
    port: int, path: str, cookies: list[str], frames_total: int, seed: int
) -> tuple[Tally, float]:
    rng = random.Random(seed)
    count = len(cookies)
    plans: list[list[Frame]] = []
    for index in range(count):
        generator = Generator(random.Random(rng.getrandbits(64)), index, is_host=index % 5 == 0)
        share = frames_total // count + (1 if index < frames_total % count else 0)
        plans.append([generator.make() for _ in range(share)])
    sockets = [await WebSocket.open(port, path, cookie) for cookie in cookies]
    tallies = [Tally() for _ in sockets]
    started = time.monotonic()
    await asyncio.gather(
        *(
            FuzzConnection(ws, plan, tally).run()
            for ws, plan, tally in zip(sockets, plans, tallies, strict=True)
        )
    )
    duration = time.monotonic() - started
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total, duration


async def oversize_phase(port: int, path: str, cookie: str) -> dict[str, Any]:
    """One text and one binary frame over 64 KiB, each on its own connection: 4413."""
    result: dict[str, Any] = {}
    for name, payload in (
        ("text", json.dumps({"request": True, "id": 1, "method": "x", "data": "a" * 70_000})),
        ("binary", os.urandom(70_000)),
    ):
        ws = await WebSocket.open(port, path, cookie)
        ws.send(payload)
        await ws.writer.drain()
        replies = 0
        while await asyncio.wait_for(ws.recv(), 10) is not None:
            replies += 1
        ws.writer.close()
        result[name] = {"close_code": ws.close_code, "replies_before_close": replies}
    return result


async def flood_phase(port: int, path: str, cookie: str, limit: int = 2000) -> dict[str, Any]:
    """Default limits: getStats as fast as possible until the server closes the socket."""
    ws = await WebSocket.open(port, path, cookie)
    codes: Counter[str] = Counter()
    sent = 0

    async def read() -> None:
        while (message := await ws.recv()) is not None:
            content = json.loads(message[1])
            if content.get("response") is True:
                codes["ok" if content.get("ok") else str(content.get("errorCode"))] += 1

    reading = asyncio.create_task(read())
    started = time.monotonic()
    try:
        while sent < limit and not reading.done():
            ws.send(json.dumps({"request": True, "id": sent + 1, "method": "getStats"}))
            sent += 1
            if sent % 20 == 0:
                await ws.writer.drain()
                await asyncio.sleep(0)
    except (ConnectionError, RuntimeError):
        pass
    try:
        await asyncio.wait_for(reading, 10)
    except TimeoutError:
        reading.cancel()
    ws.writer.close()
    return {
        "frames_sent": sent,
        "responses": dict(codes),
        "close_code": ws.close_code,
        "seconds": round(time.monotonic() - started, 3),
    }


async def final_join(port: int, path: str, cookie: str) -> dict[str, Any]:
    ws = await WebSocket.open(port, path, cookie)
    peer_id = f"final-{uuid.uuid4().hex[:8]}"
    ws.send(
        json.dumps(
            {
                "request": True,
                "id": "final-join",
                "method": "join",
                "data": {"peerId": peer_id, "displayName": "After the fuzz"},
            }
        )
    )
    response: dict[str, Any] | None = None
    while response is None:
        message = await asyncio.wait_for(ws.recv(), 15)
        if message is None:
            break
        content = json.loads(message[1])
        if content.get("response") is True and content.get("id") == "final-join":
            response = content
    await ws.close()
    data = (response or {}).get("data") or {}
    return {
        "ok": bool(response and response.get("ok") is True),
        "errorCode": (response or {}).get("errorCode"),
        "protocolVersion": data.get("protocolVersion"),
        "peerId": data.get("peerId"),
        "role": data.get("role"),
        "close_code": ws.close_code,
    }


def healthz(port: int) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz")
    request.add_header("Authorization", f"Bearer {HEALTHZ_TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return {"status": response.status, "body": json.loads(response.read())}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read().decode(errors="replace")[:2000]}


def log_problems(path: Path) -> list[str]:
    """Tracebacks and ERROR/CRITICAL lines of a process's combined output."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return [f"no log at {path}"]
    blocks: list[list[str]] = []
    inside = False
    for line in lines:
        starts_entry = line[:4].isdigit()  # "2026-…": a new log record
        if " ERROR " in line or " CRITICAL " in line or (not inside and "Traceback" in line):
            blocks.append([line])
            inside = True
        elif inside and not starts_entry:
            blocks[-1].append(line)
        else:
            inside = False
    # One line per problem: the record, then the exception it ended with.
    problems = []
    for block in blocks:
        first = block[0].split(" ", 2)[-1] if block[0][:4].isdigit() else block[0]
        ends = [line for line in block if line and line[0] != " " and "Error" in line]
        last = ends[-1] if ends else block[-1]
        problems.append(f"{first} | {last}" if last != block[0] else first)
    return problems


# --- the stack -----------------------------------------------------------------------------


def prepare_environment(run_id: str) -> tuple[tuple[Any, Path] | None, Path]:
    """Own database and channel-layer prefix for this run; embedded Redis unless REDIS_URL."""
    var = REPO / "var"
    var.mkdir(exist_ok=True)
    db_path = var / f"{run_id}.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["CHANNEL_LAYER_PREFIX"] = f"meet-{run_id}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
    os.environ["SFU_LISTEN_IPS"] = "127.0.0.1"
    os.environ["SFU_ICE_SERVERS"] = ""
    os.environ["MEET_HEALTHZ_TOKEN"] = HEALTHZ_TOKEN
    for name in RAISED_LIMITS:
        os.environ.pop(name, None)  # the flood phase runs on the defaults
    embedded = None
    if not os.environ.get("REDIS_URL"):
        from meet import embedded_redis

        socket_path = var / f"{run_id}-redis.sock"
        embedded = (embedded_redis.start(socket_path), socket_path)
        os.environ["REDIS_URL"] = f"unix://{socket_path}"
    return embedded, db_path


def start_web(env: dict[str, str], log_path: Path) -> tuple[Any, int]:
    from tests.e2e.stack import ManagedProcess, free_port, wait_until

    port = free_port()
    web = ManagedProcess(
        "daphne",
        [sys.executable, "-m", "meet.web"],
        {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            # meet.web execs `daphne`: the virtualenv's.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        },
        log_path,
    )
    web.start()

    def listening() -> bool:
        if not web.alive():
            raise RuntimeError(f"daphne exited:\n{web.log_tail()}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, 60, "daphne to listen")
    return web, port


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=10_000, help="fuzz frames (10000)")
    parser.add_argument("--quick", action="store_true", help="1,000 frames: a smoke run")
    parser.add_argument("--connections", type=int, default=20, help="WebSockets (20)")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run's frames")
    args = parser.parse_args()
    frames_total = 1_000 if args.quick else args.frames
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed} ({frames_total} frames over {args.connections} connections)")

    run_id = f"bench-fuzz-{os.getpid()}"
    embedded, db_path = prepare_environment(run_id)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts.models import User
    from rooms.services import create_instant_meeting
    from sfu import registry
    from tests.e2e.stack import SfuNodeProcess, child_env, session_cookie

    call_command("migrate", verbosity=0)
    env = child_env(os.environ["DATABASE_URL"])
    log_dir = REPO / "var" / "bench-logs"
    logs = {
        "fuzz daphne": log_dir / f"{run_id}-daphne.log",
        "flood daphne": log_dir / f"{run_id}-flood-daphne.log",
        "sfu node": log_dir / f"{run_id}-sfu.log",
    }
    node = SfuNodeProcess(env, logs["sfu node"], node_name=f"fuzz-{os.getpid()}")
    processes: list[Any] = [node]
    results: dict[str, Any] = {}
    failures: list[str] = []
    try:
        node.start(is_live=lambda name: registry.live_nodes().filter(name=name).exists())
        fuzz_web, fuzz_port = start_web({**env, **RAISED_LIMITS}, logs["fuzz daphne"])
        processes.append(fuzz_web)
        flood_web, flood_port = start_web(env, logs["flood daphne"])
        processes.append(flood_web)

        host = User.objects.create_user(f"host-{uuid.uuid4().hex[:8]}@example.org")
        guest = User.objects.create_user(f"fuzzer-{uuid.uuid4().hex[:8]}@example.org")
        meeting = create_instant_meeting(host)
        path = f"/ws/rooms/{meeting.code}/"

        def cookie(user: Any, port: int) -> str:
            made = session_cookie(user, f"http://127.0.0.1:{port}")
            return f"{made['name']}={made['value']}"

        host_cookie, guest_cookie = cookie(host, fuzz_port), cookie(guest, fuzz_port)
        cookies = [host_cookie if i % 5 == 0 else guest_cookie for i in range(args.connections)]
        flood_cookie = cookie(guest, flood_port)

        async def run_all() -> None:
            tally, duration = await fuzz_phase(fuzz_port, path, cookies, frames_total, seed)
            results["tally"] = tally
            results["duration_s"] = duration
            results["oversize"] = await oversize_phase(fuzz_port, path, guest_cookie)
            results["flood"] = await flood_phase(flood_port, path, flood_cookie)
            results["healthz"] = await asyncio.to_thread(healthz, fuzz_port)
            results["final_join"] = await final_join(fuzz_port, path, host_cookie)

        asyncio.run(run_all())
        time.sleep(0.5)  # the last log lines
        problems = {name: log_problems(path) for name, path in logs.items()}
        alive = {process.name + str(i): process.alive() for i, process in enumerate(processes)}
    finally:
        for process in reversed(processes):
            process.stop()
        if embedded is not None:
            from meet import embedded_redis

            embedded_redis.stop(*embedded)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)

    tally: Tally = results["tally"]
    duration: float = results["duration_s"]
    sent = tally.frames_text + tally.frames_binary
    oversize, flood = results["oversize"], results["flood"]
    health, final = results["healthz"], results["final_join"]

    def check(ok: bool, what: str) -> None:
        if not ok:
            failures.append(what)

    check(sent >= frames_total, f"sent {sent} frames, fewer than {frames_total}")
    check(tally.missing == 0, f"{tally.missing} requests got no response")
    check(tally.duplicates == 0, f"{tally.duplicates} requests got more than one response")
    check(tally.unmatched == 0, f"{tally.unmatched} responses matched no request")
    check(tally.null_deficit == 0, f"{tally.null_deficit} id-less frames got no error")
    check(tally.null_surplus == 0, f"{tally.null_surplus} id-null errors too many")
    check(not tally.undocumented, f"undocumented answers: {tally.undocumented[:5]}")
    check(not tally.internal_errors, f"internal_error: {tally.internal_errors[:5]}")
    check(not tally.unexpected_closes, f"closed during the fuzz: {tally.unexpected_closes[:5]}")
    check(tally.stalls == 0, f"{tally.stalls} stalls of {STALL_SECONDS:g} s without an answer")
    for name in ("text", "binary"):
        check(oversize[name]["close_code"] == 4413, f"oversized {name} frame: {oversize[name]}")
    check(flood["close_code"] == 4429, f"flood not closed 4429: {flood}")
    check(flood["responses"].get("rate_limited", 0) > 0, f"flood got no rate_limited: {flood}")
    check(
        health["status"] == 200
        and isinstance(health["body"], dict)
        and health["body"].get("ok") is True
        and "checks" in health["body"],
        f"/healthz after the run: {health}",
    )
    check(final["ok"] and final["protocolVersion"] == 1, f"join after the run: {final}")
    check(all(alive.values()), f"a process died during the run: {alive}")
    for name, found in problems.items():
        check(not found, f"{name} logged {len(found)} tracebacks/errors")

    report = {
        "benchmark": "fuzz-signaling",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/fuzz_signaling.py", *sys.argv[1:]]),
        "seed": seed,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "connections": args.connections,
        "frames": {"text": tally.frames_text, "binary": tally.frames_binary, "total": sent},
        "frames_by_kind": dict(tally.kinds.most_common()),
        "requests_with_id": tally.requests,
        "frames_without_usable_id": tally.expected_null,
        "responses_to_nothing": tally.expected_nothing,
        "responses": tally.responses,
        "responses_id_null": tally.responses_null,
        "id_null_codes": dict(tally.null_codes),
        "ok_responses": tally.ok,
        "error_codes": dict(tally.error_codes.most_common()),
        "unmatched": tally.unmatched,
        "duplicates": tally.duplicates,
        "missing": tally.missing,
        "notifications": dict(tally.notifications),
        "server_requests": tally.server_requests,
        "closes_fuzz_phase": dict(tally.closes),
        "unexpected_closes": tally.unexpected_closes,
        "internal_errors": tally.internal_errors,
        "undocumented": tally.undocumented,
        "duration_s": round(duration, 2),
        "frames_per_s": round(sent / duration, 1) if duration else None,
        "oversize": oversize,
        "flood_default_limits": flood,
        "healthz": health,
        "final_join": final,
        "log_problems": problems,
        "failures": failures,
    }

    print(f"{'measure':34} value")
    rows: list[tuple[str, object]] = [
        ("frames sent (text / binary)", f"{tally.frames_text} / {tally.frames_binary}"),
        ("requests with a usable id", tally.requests),
        ("frames without a usable id", tally.expected_null),
        ("responses to nothing sent", tally.expected_nothing),
        ("responses received (id null)", f"{tally.responses} ({tally.responses_null})"),
        ("ok responses", tally.ok),
        (
            "unmatched / duplicate / missing",
            f"{tally.unmatched} / {tally.duplicates} / {tally.missing}",
        ),
        ("closes in the fuzz phase", dict(tally.closes) or "none"),
        (
            "oversized text / binary close",
            f"{oversize['text']['close_code']} / {oversize['binary']['close_code']}",
        ),
        (
            "flood (default limits)",
            f"{flood['frames_sent']} frames, {flood['responses']}, close {flood['close_code']}",
        ),
        ("/healthz after", health["status"]),
        ("join after", "ok" if final["ok"] else final),
        ("duration", f"{duration:.1f} s"),
        ("frames/s", round(sent / duration, 1) if duration else "-"),
    ]
    for label, value in rows:
        print(f"{label:34} {value}")
    print("error codes: " + ", ".join(f"{c} {n}" for c, n in tally.error_codes.most_common()))
    for name, found in problems.items():
        for problem, count in Counter(found).most_common(10):
            print(f"{name} log, {count}x: {problem}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"fuzz-signaling-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"JSON: {out}")
    if failures:
        print("FAILED:\n- " + "\n- ".join(failures))
        return 1
    print(f"all checks passed (seed {seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
