"""Thousands of hypothesis-made malformed frames at one consumer: every one gets a clear error
(or is ignored, for stray responses), nothing crashes, and the connection still serves a
normal join afterwards."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import User
from rooms.models import Meeting
from rooms.signaling import protocol
from rooms.tests.signaling_support import (
    SignalingClient,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sfu_node"),
    pytest.mark.slow,
]

FRAMES = 3000
METHODS = [
    "join",
    "produce",
    "closeProducer",
    "pauseProducer",
    "resumeProducer",
    "pauseConsumer",
    "resumeConsumer",
    "requestConsumerKeyFrame",
    "setConsumerView",
    "restartIce",
    "getStats",
    "changeDisplayName",
    "leave",
    "chatMessage",
    "chatHistory",
    "newConsumer",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "peerId",
        "displayName",
        "sdp",
        "sources",
        "producerId",
        "consumerId",
        "clientId",
        "text",
        "sinceId",
    ]
)
request_data = st.one_of(json_values, st.dictionaries(field_names, json_values, max_size=4))
ids = st.one_of(
    st.integers(),
    st.text(max_size=70),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
requests = st.fixed_dictionaries(
    {
        "request": st.sampled_from([True, True, True, 1, "yes"]),
        "id": ids,
        "method": st.one_of(st.sampled_from(METHODS), st.text(max_size=70)),
        "data": request_data,
    }
)
responses = st.fixed_dictionaries(
    {
        "response": st.just(True),
        "id": ids,
        "ok": st.one_of(st.booleans(), json_values),
        "data": request_data,
    }
)
json_frames = st.one_of(requests, responses, json_values).map(
    lambda value: json.dumps(value, allow_nan=False)
)
raw_frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.just("{" * 5000),  # deep nesting
    st.just("[" * 100_000),  # over the frame limit: this one closes the socket
)
frames_strategy = st.one_of(json_frames, json_frames, json_frames, raw_frames)


def make_frames(count: int) -> list[str]:
    """Collect `count` frames from hypothesis (the sending needs the event loop, so the frames
    are drawn first and thrown afterwards)."""
    frames: list[str] = []

    @hypothesis_settings(
        max_examples=count,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(frames_strategy)
    def collect(frame: str) -> None:
        # The oversized case has its own test; the test communicator cannot send empty text.
        if 0 < len(frame) <= protocol.MAX_FRAME_BYTES:
            frames.append(frame)

    collect()
    return frames


async def test_thousands_of_malformed_frames_leave_the_server_healthy(settings: Any) -> None:
    settings.SIGNALING_RATE_PER_SECOND = 1_000_000.0
    settings.SIGNALING_RATE_BURST = 1_000_000
    started = time.monotonic()
    # Drawn in a thread: seconds of CPU on the event loop would starve the in-process SFU
    # node's heartbeat and the channel layer's reads.
    frames = await asyncio.to_thread(make_frames, FRAMES)
    assert len(frames) > FRAMES // 2
    host = await User.objects.acreate(email=f"fuzz-{uuid.uuid4().hex[:6]}@example.org")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Fuzz")
    client = SignalingClient(meeting.code, await session_cookie(host))
    assert (await client.connect())[0]

    for number, frame in enumerate(frames, 1):
        await client.send_text(frame)
        if client.closed_with is not None:
            break
        if number % 100 == 0:
            # Let the server catch up (a round trip answered after everything before it), so
            # the flood is thrown at a live server rather than queued up in the test.
            probe = await client.request_frame("noSuchMethod", timeout=30)
            assert probe["errorCode"] == "unknown_method"
        if time.monotonic() - started > 40:
            break  # keep the suite fast on a busy machine; thousands were sent by now
    assert client.closed_with is None, f"the fuzz closed the socket ({client.closed_with})"

    # The server is still there: a normal request is answered. (A fuzzed frame may have been
    # a valid join; leave first so that the join below is a fresh one either way.)
    leave = await client.request_frame("leave")
    assert leave["ok"] or leave["errorCode"] == "not_joined"
    data = await client.join(name="After the storm")
    assert data["protocolVersion"] == protocol.PROTOCOL_VERSION
    await wait_until(lambda: client.unmatched, what="error responses")
    errors = [frame for frame in client.unmatched if not frame.get("ok")]
    assert len(errors) > len(frames) // 4, "the fuzz was answered with errors"
    for error in errors:
        assert isinstance(error["errorCode"], str), error
        assert error["errorCode"], error
        assert isinstance(error["errorReason"], str), error
        assert error["errorReason"], error
    codes = {error["errorCode"] for error in errors}
    assert "internal_error" not in codes, "a frame made a handler fail"
    assert {"malformed_json", "invalid_frame", "unknown_method", "not_joined"} <= codes, codes
