"""The node's channel API: bad input gets a clear error, state is accounted for, rooms move."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from sfu import client, registry
from sfu.channel_api import SfuRequestError, request
from sfu.contract import SfuMethod
from sfu.node import SfuNodeServer
from sfu.tests.helpers import (
    Participant,
    SizedVideoTrack,
    ToneTrack,
    start_node,
    stop_node,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

ZERO_COUNTS = {"rooms": 0, "peers": 0, "producers": 0, "consumers": 0, "transports": 0}


async def error_of(node: SfuNodeServer, method: str, data: Any) -> str:
    with pytest.raises(SfuRequestError) as raised:
        await request(node.channel, method, data)
    assert raised.value.reason
    return raised.value.code


def test_the_node_answers_every_method_of_the_contract() -> None:
    node = SfuNodeServer(f"test-{uuid.uuid4().hex[:8]}")
    assert set(node.handlers) == set(SfuMethod)


def test_read_event_refuses_what_is_not_an_event_of_the_contract() -> None:
    event = {
        "type": "sfu.event",
        "room": "r",
        "peer_id": "a",
        "event": "consumerClosed",
        "data": {"consumer_id": "c"},
    }
    assert client.read_event(event) == event
    assert client.read_event({**event, "event": "somethingElse"}) is None
    assert client.read_event({**event, "data": []}) is None
    assert client.read_event({**event, "room": None}) is None
    negotiate = {**event, "event": "negotiate"}
    assert client.read_event({**negotiate, "data": {"negotiation_id": "n", "sdp": 1}}) is None
    well_formed = {"negotiation_id": "n", "sdp": "v=0", "consumers": []}
    assert client.read_event({**negotiate, "data": well_formed}) is not None
    limited = {**event, "event": "downlinkLimited"}
    assert client.read_event({**limited, "data": {"limited": True, "estimate_bps": 5}}) is not None
    for bad in ({"limited": 1, "estimate_bps": 5}, {"limited": True, "estimate_bps": True}, {}):
        assert client.read_event({**limited, "data": bad}) is None


async def test_malformed_requests_get_error_replies_and_the_node_stays_up(
    sfu_node: SfuNodeServer,
) -> None:
    node = sfu_node
    room = f"room-{uuid.uuid4().hex[:6]}"
    assert await error_of(node, "join", {"room": 5, "peer_id": "a"}) == "bad_request"
    assert await error_of(node, "join", {"room": room, "peer_id": "a"}) == "bad_request"
    assert await error_of(node, "join", {"room": "", "peer_id": "a", "peer_channel": "x"}) == (
        "bad_request"
    )
    assert (
        await error_of(
            node,
            "join",
            {"room": "r" * 65, "peer_id": "a", "peer_channel": "x", "display_name": ""},
        )
        == "bad_request"
    )
    bad_channel = {"room": room, "peer_id": "a", "peer_channel": "no spaces", "display_name": ""}
    assert await error_of(node, "join", bad_channel) == "bad_request"
    # Before join: unknown room / peer.
    assert await error_of(node, "produce", {"room": room, "peer_id": "a", "sdp": "v=0"}) == (
        "unknown_room"
    )
    alice = Participant(node.channel, room, "alice")
    try:
        await alice.join()
        base = {"room": room, "peer_id": alice.peer_id}
        assert await error_of(node, "produce", {**base, "peer_id": "ghost", "sdp": "x"}) == (
            "unknown_peer"
        )
        assert await error_of(node, "produce", {**base, "sdp": 42}) == "bad_request"
        assert await error_of(node, "produce", {**base, "sdp": "not an sdp"}) == "bad_sdp"
        assert await error_of(node, "produce", {**base, "sdp": "v=0\r\n", "sources": []}) == (
            "bad_request"
        )
        assert (
            await error_of(node, "produce", {**base, "sdp": "v=0\r\n", "sources": {"0": "webcam"}})
            == "bad_request"
        )
        for method in ("closeProducer", "pauseProducer", "resumeProducer"):
            assert await error_of(node, method, {**base, "producer_id": "nope"}) == (
                "unknown_producer"
            )
            assert await error_of(node, method, {**base, "producer_id": None}) == "bad_request"
        for method in ("pauseConsumer", "resumeConsumer", "requestConsumerKeyFrame"):
            assert await error_of(node, method, {**base, "consumer_id": "nope"}) == (
                "unknown_consumer"
            )
        view = {**base, "consumer_id": "nope", "width": 640, "height": 360}
        assert await error_of(node, "setConsumerView", view) == "unknown_consumer"
        for bad in ({"width": -1}, {"height": 8193}, {"width": "640"}, {"height": True}, {}):
            request_data = {**view, **bad} if bad else {**base, "consumer_id": "nope"}
            assert await error_of(node, "setConsumerView", request_data) == "bad_request"
        assert (
            await error_of(
                node, "receiveAnswer", {**base, "negotiation_id": "n1", "sdp": "v=0\r\n"}
            )
            == "bad_sdp"
        )
        assert await error_of(node, "nosuchmethod", base) == "unknown_method"

        # A mismatched source for the m-line's kind, and a real offer sent as an answer.
        (_camera,) = await alice.publish([(SizedVideoTrack(320, 240), "camera")])
        offer = alice.send_pc.localDescription.sdp
        assert await error_of(node, "produce", {**base, "sdp": offer, "sources": {"0": "mic"}}) == (
            "bad_request"
        )
        # Simulcast lines that cannot work.
        for lines in (
            "a=simulcast:send q;h\r\na=rid:q send\r\n",  # h has no a=rid
            "a=rid:q send\r\na=rid:h send\r\na=simulcast:recv q;h\r\n",
            "a=rid:q!x send\r\na=simulcast:send q!x\r\n",
            "a=rid:q recv\r\na=simulcast:send q\r\n",
        ):
            bad_offer = offer.replace("a=mid:0\r\n", "a=mid:0\r\n" + lines)
            assert bad_offer != offer
            assert (
                await error_of(
                    node, "produce", {**base, "sdp": bad_offer, "sources": {"0": "camera"}}
                )
                == "bad_sdp"
            )
        assert (
            await error_of(node, "receiveAnswer", {**base, "negotiation_id": "n1", "sdp": offer})
            == "unknown_negotiation"
        )

        # Garbage on the node's channel itself.
        layer = get_channel_layer()
        reply_to = f"test-reply.{uuid.uuid4().hex}"
        await layer.send(
            node.channel,
            {"type": "sfu.request", "id": "x1", "method": "dump", "data": [], "reply_to": reply_to},
        )
        reply = await asyncio.wait_for(layer.receive(reply_to), 5)
        assert reply["ok"] is False
        assert reply["error_code"] == "bad_request"
        await layer.send(node.channel, {"nonsense": True})

        assert (await client.ping(node.channel))["node"] == node.name
        assert (await client.dump(node.channel))["producers"] == 1
    finally:
        await alice.close()


async def test_an_offer_without_a_direction_is_refused_as_bad_sdp(
    sfu_node: SfuNodeServer,
) -> None:
    """aiortc fails inside createAnswer on an m-line without a=sendonly/sendrecv/...: the node
    refuses the offer first, with the code a client can act on, and the peer stays usable."""
    room = f"room-{uuid.uuid4().hex[:6]}"
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    alice = Participant(sfu_node.channel, room, "alice")
    try:
        await alice.join()
        offerer.addTransceiver(SizedVideoTrack(320, 240), direction="sendonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        offer = offerer.localDescription.sdp
        directionless = re.sub(r"a=(sendonly|sendrecv|recvonly|inactive)\r\n", "", offer)
        assert directionless != offer
        base = {"room": room, "peer_id": alice.peer_id, "sources": {"0": "camera"}}
        assert await error_of(sfu_node, "produce", {**base, "sdp": directionless}) == "bad_sdp"
        (camera,) = await alice.publish([(SizedVideoTrack(320, 240), "camera")])
        assert camera["source"] == "camera"
    finally:
        await offerer.close()
        await alice.close()


async def test_counts_return_to_zero_after_joins_media_and_leaves(sfu_node: SfuNodeServer) -> None:
    node = sfu_node
    room = f"room-{uuid.uuid4().hex[:6]}"
    await sync_to_async(registry.place_room)(room)
    people = [Participant(node.channel, room, name) for name in ("a", "b", "c")]
    try:
        for person in people:
            await person.join()
        await people[0].publish([(SizedVideoTrack(320, 240), "camera"), (ToneTrack(), "mic")])
        await people[1].publish([(ToneTrack(), "mic")])
        # A reconnect with the same peer id replaces the old peer.
        await wait_until(lambda: len(people[2].received) >= 3, what="c's tracks")
        # Every event the node sent reads as one of the contract's.
        assert all(client.read_event(e) is not None for p in people for e in p.events)
        counts = await client.dump(node.channel)
        assert counts["rooms"] == 1
        assert counts["peers"] == 3
        assert counts["producers"] == 3
        assert counts["consumers"] == 3 * 2  # each producer to the two others
        assert counts["transports"] == 2 + 2 + 1  # c only receives
        assert counts["per_room"][room]["peers"] == 3
        # A retried receiveAnswer (its reply was lost) is answered, not refused.
        last = [e for e in people[2].events if e["event"] == "negotiate"][-1]
        answer = people[2].recv_pc.localDescription.sdp
        negotiation_id = last["data"]["negotiation_id"]
        assert (
            await people[2].call("receiveAnswer", negotiation_id=negotiation_id, sdp=answer) == {}
        )
        # A retried join from the same connection changes nothing.
        to_room = client.NodeClient(node.channel, room)
        again = await to_room.join(people[1].peer_id, people[1]._channel, "b")
        assert len(again["peers"]) == 2
        assert (await client.dump(node.channel))["producers"] == 3
        rejoin = await to_room.join(people[1].peer_id, "test-peer.gone", "b")
        assert len(rejoin["peers"]) == 2
        counts = await client.dump(node.channel)
        assert counts["peers"] == 3
        assert counts["producers"] == 2
        await wait_until(lambda: node.current_load().peer_count == 3)
        for person in people:
            await person.call("leave")
        await people[0].call("leave")  # a retried leave is a no-op
        assert await client.dump(node.channel) == {**ZERO_COUNTS, "per_room": {}}
        assert node.current_load() == registry.NodeLoad()
        # The last one out released the room's placement.
        assert await sync_to_async(registry.node_for_room)(room) is None
    finally:
        for person in people:
            await person.close()


async def test_active_speaker_follows_the_audio_level_and_goes_null_on_silence(
    sfu_node: SfuNodeServer,
) -> None:
    room = f"room-{uuid.uuid4().hex[:6]}"
    alice = Participant(sfu_node.channel, room, "alice")
    bob = Participant(sfu_node.channel, room, "bob")
    tone = ToneTrack()
    try:
        await alice.join()
        await bob.join()
        (mic,) = await alice.publish([(tone, "mic")])
        await wait_until(lambda: bob.consumer_of(mic["producer_id"]) is not None)
        # Opus is forwarded and decodes at the subscriber.
        await wait_until(
            lambda: (
                (r := bob.received_for(bob.consumer_of(mic["producer_id"]))) is not None
                and r.audio_frames >= 25
            ),
            what="decoded audio",
        )
        await wait_until(lambda: bob.saw("activeSpeaker", peer_id=alice.peer_id), what="speaker")
        tone.speaking = False
        await wait_until(lambda: bob.saw("activeSpeaker", peer_id=None), what="silence")
        assert alice.saw("activeSpeaker", peer_id=alice.peer_id)
    finally:
        for p in (alice, bob):
            await p.close()


async def test_a_node_that_stops_heartbeating_is_detected_and_its_rooms_are_replaced(
    settings: Any,
) -> None:
    settings.SFU_HEARTBEAT_SECONDS = 0.2
    settings.SFU_NODE_TIMEOUT_SECONDS = 1.5
    first, first_task = await start_node()
    second, second_task = await start_node()
    try:
        room = f"room-{uuid.uuid4().hex[:6]}"
        placed = await sync_to_async(registry.place_room)(room)
        hung, healthy = (first, second) if placed.node == first.name else (second, first)
        # Kill the placed node's heartbeat (a hung or dead process stops heartbeating).
        hung.stop_heartbeat()

        async def replaced() -> bool:
            node = await sync_to_async(registry.place_room)(room)
            return node.node == healthy.name

        async with asyncio.timeout(20):
            while not await replaced():
                await asyncio.sleep(0.1)
        live = await sync_to_async(lambda: [n.name for n in registry.live_nodes()])()
        assert live == [healthy.name]
    finally:
        await stop_node(first, first_task)
        await stop_node(second, second_task)


async def test_a_node_found_unresponsive_closes_its_rooms_when_it_heartbeats_again(
    sfu_node: SfuNodeServer,
) -> None:
    room = f"room-{uuid.uuid4().hex[:6]}"
    assert (await sync_to_async(registry.place_room)(room)).node == sfu_node.name
    mover = Participant(sfu_node.channel, room, "mover")
    try:
        await mover.join()
        await sfu_node.heartbeat()  # an ordinary heartbeat closes nothing
        assert (await client.dump(sfu_node.channel))["per_room"][room]["peers"] == 1
        node = await sync_to_async(registry.SfuNode.objects.get)(name=sfu_node.name)
        # A caller's request timed out and a ping went unanswered (rooms.sfu_gateway): out of
        # placement, its rooms' placements gone (their participants join elsewhere).
        assert await sync_to_async(registry.declare_unresponsive)(node.name, node.started_at)
        assert not await sync_to_async(registry.live_nodes().filter(name=node.name).exists)()
        assert await sync_to_async(registry.room_placements)([room]) == {}

        await sfu_node.heartbeat()

        assert await sync_to_async(registry.live_nodes().filter(name=node.name).exists)()
        assert (await client.dump(sfu_node.channel))["per_room"] == {}
    finally:
        await mover.close()


async def test_declaring_a_node_unresponsive_spares_its_restarted_incarnation(
    sfu_node: SfuNodeServer,
) -> None:
    node = await sync_to_async(registry.SfuNode.objects.get)(name=sfu_node.name)
    earlier = node.started_at - dt.timedelta(seconds=30)
    assert not await sync_to_async(registry.declare_unresponsive)(node.name, earlier)
    assert await sync_to_async(registry.live_nodes().filter(name=node.name).exists)()
