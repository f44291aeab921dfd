"""Media through the signaling server: real aiortc peers, the real consumer stack, a real SFU
node. A publisher's frames reach a subscriber via produce -> negotiate -> newConsumer ->
receiveAnswer, and a moderator's mute pauses the microphone at the SFU."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from accounts.models import User
from rooms.models import Meeting
from rooms.signaling import protocol
from rooms.tests.media_support import participant
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


async def test_a_subscriber_receives_the_publishers_video_through_newconsumer() -> None:
    host = await User.objects.acreate(email=f"pub-{uuid.uuid4().hex[:6]}@example.org")
    viewer = await User.objects.acreate(email=f"sub-{uuid.uuid4().hex[:6]}@example.org")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Demo")
    publisher = await participant(meeting, host, "Publisher")
    subscriber = await participant(meeting, viewer, "Subscriber")
    try:
        produced = await publisher.publish({"camera": VideoStreamTrack()})
        [producer] = produced["producers"]
        assert producer["kind"] == "video"
        assert producer["source"] == "camera"
        assert producer["mid"] == "0"
        await wait_until(lambda: subscriber.consumers, what="newConsumer")
        [consumer] = subscriber.consumers.values()
        assert consumer["producerId"] == producer["producerId"]
        assert consumer["peerId"] == publisher.client.peer_id
        assert consumer["source"] == "camera"
        await wait_until(lambda: subscriber.frames.get("video", 0) >= 10, 40, "decoded frames")

        # A late joiner sees the publisher's producer in the join response.
        late = SignalingClient(meeting.code, await session_cookie(viewer))
        assert (await late.connect())[0]
        data = await late.join(name="Late")
        by_peer = {p["peerId"]: p for p in data["peers"]}
        assert [p["producerId"] for p in by_peer[publisher.client.peer_id]["producers"]] == [
            producer["producerId"]
        ]

        stats = await subscriber.client.request("getStats")
        assert stats is not None
        await publisher.client.request("closeProducer", {"producerId": producer["producerId"]})
        await wait_until(
            lambda: subscriber.client.notified("consumerClosed"), what="consumerClosed"
        )
        assert subscriber.client.notified("consumerClosed")[0]["consumerId"] in subscriber.consumers
    finally:
        await publisher.close()
        await subscriber.close()


async def test_muterequested_pauses_the_microphone_and_tells_the_participant() -> None:
    host = await User.objects.acreate(email=f"host-{uuid.uuid4().hex[:6]}@example.org")
    talker = await User.objects.acreate(email=f"talk-{uuid.uuid4().hex[:6]}@example.org")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Demo")
    moderator = await participant(meeting, host, "Host")
    speaker = await participant(meeting, talker, "Talker")
    try:
        produced = await speaker.publish({"mic": AudioStreamTrack(), "camera": VideoStreamTrack()})
        mic = next(p for p in produced["producers"] if p["source"] == "mic")
        await wait_until(lambda: len(moderator.consumers) == 2, what="two consumers")
        mic_consumer = next(c for c in moderator.consumers.values() if c["source"] == "mic")
        await get_channel_layer().group_send(
            f"room.{meeting.code}",
            {
                "type": "room.event",
                "event": "muteRequested",
                "data": {},
                "target_peer_id": speaker.client.peer_id,
            },
        )
        await wait_until(lambda: speaker.client.notified("mutedByHost"), what="mutedByHost")
        await wait_until(
            lambda: moderator.client.notified(
                "consumerPaused", consumerId=mic_consumer["consumerId"]
            ),
            what="the mic consumer paused",
        )
        assert not moderator.client.notified("mutedByHost")
        # The participant may unmute themselves.
        await speaker.client.request("resumeProducer", {"producerId": mic["producerId"]})
        await wait_until(
            lambda: moderator.client.notified(
                "consumerResumed", consumerId=mic_consumer["consumerId"]
            )
        )
    finally:
        await moderator.close()
        await speaker.close()


async def test_setconsumerview_stops_a_hidden_video_and_refuses_sizes_that_are_not_pixels() -> None:
    host = await User.objects.acreate(email=f"pub-{uuid.uuid4().hex[:6]}@example.org")
    viewer = await User.objects.acreate(email=f"sub-{uuid.uuid4().hex[:6]}@example.org")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Views")
    publisher = await participant(meeting, host, "Publisher")
    subscriber = await participant(meeting, viewer, "Subscriber")
    try:
        await publisher.publish({"camera": VideoStreamTrack()})
        await wait_until(lambda: subscriber.frames.get("video", 0) >= 5, 40, "decoded frames")
        [consumer] = subscriber.consumers.values()
        consumer_id = consumer["consumerId"]
        client = subscriber.client
        for bad in ({"width": -1}, {"height": 8193}, {"width": "640"}, {"height": None}):
            frame = await client.request_frame(
                "setConsumerView", {"consumerId": consumer_id, "width": 640, "height": 360, **bad}
            )
            assert (frame["ok"], frame["errorCode"]) == (False, "invalid_data"), bad
        frame = await client.request_frame(
            "setConsumerView", {"consumerId": "nope", "width": 1, "height": 1}
        )
        assert (frame["ok"], frame["errorCode"]) == (False, "unknown_consumer")

        await client.request(
            "setConsumerView", {"consumerId": consumer_id, "width": 0, "height": 0}
        )
        [stats] = (await client.request("getStats"))["consumers"]
        assert (stats["forwarding"], stats["viewWidth"], stats["viewHeight"]) == (False, 0, 0)
        stopped_at = stats["packets"]

        await client.request(
            "setConsumerView", {"consumerId": consumer_id, "width": 640, "height": 480}
        )
        shown_at = subscriber.frames["video"]
        await wait_until(lambda: subscriber.frames["video"] > shown_at + 5, 40, "frames again")
        [stats] = (await client.request("getStats"))["consumers"]
        assert stats["forwarding"]
        assert stats["packets"] > stopped_at
        assert (stats["viewWidth"], stats["viewHeight"]) == (640, 480)
        # A one-layer producer (aiortc sends no simulcast): layer 0, whatever the view.
        assert (stats["layer"], stats["targetLayer"], stats["layerSwitches"]) == (0, 0, 0)
    finally:
        await publisher.close()
        await subscriber.close()


class LargeAnswerBrowser:
    """Pads each answer's session part past the ordinary frame limit, as a viewer in a
    meeting of fifty-odd people has an answer that large (one m-line per remote track)."""

    PADDING = "a=x-meet-padding:" + "p" * 990 + "\r\n"

    @classmethod
    def pad(cls, browser: Any) -> list[int]:
        """Pad `browser`'s answers; the list fills with the padded answers' sizes."""
        answer = browser._on_server_request
        sizes: list[int] = []

        async def padded(method: str, data: dict[str, Any]) -> dict[str, Any]:
            sdp = (await answer(method, data))["sdp"]
            head, separator, media = sdp.partition("\r\nm=")
            lines = cls.PADDING * (protocol.MAX_FRAME_BYTES // len(cls.PADDING) + 10)
            sdp = head + "\r\n" + lines.rstrip("\r\n") + separator + media
            sizes.append(len(sdp))
            return {"sdp": sdp}

        browser.client.on_server_request = padded
        return sizes


async def test_an_answer_larger_than_an_ordinary_frame_is_accepted_while_one_is_awaited() -> None:
    host = await User.objects.acreate(email=f"pub-{uuid.uuid4().hex[:6]}@example.org")
    viewer = await User.objects.acreate(email=f"sub-{uuid.uuid4().hex[:6]}@example.org")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Large answers")
    publisher = await participant(meeting, host, "Publisher")
    subscriber = await participant(meeting, viewer, "Subscriber")
    answer_sizes = LargeAnswerBrowser.pad(subscriber)
    try:
        await publisher.publish({"camera": VideoStreamTrack()})
        # Decoded video: the node applied the answer that came in the oversized frame.
        await wait_until(lambda: subscriber.frames.get("video", 0) >= 10, 40, "decoded frames")
        assert answer_sizes
        assert min(answer_sizes) > protocol.MAX_FRAME_BYTES
        assert subscriber.client.closed_with is None
    finally:
        await publisher.close()
        await subscriber.close()
