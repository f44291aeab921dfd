"""A subscriber's downlink: what its link can take, and how that is shared among its videos.

Every packet the SFU sends on a subscriber's receive transport carries a transport-wide
sequence number (where the subscriber negotiated transport-cc, which the SFU offers on video);
the subscriber's browser reports when each arrived (RTCP transport-wide feedback, every 50 to
100 ms), and `DownlinkEstimator` (sfu/bwe.py) turns sends and arrivals into an estimate of the
rate the link carries without building a queue. Every ALLOCATION_SECONDS the estimate is
shared out (`allocate`): audio and single-layer videos take what they send; each simulcast
video starts from its cheapest choice (`stream_choices`: its lowest spatial layer at a quarter
of the frame rate, where the publisher sends temporal layers) and then, round by round —
screen shares first, the active speaker next, larger tiles before smaller — each moves one
step up (half the frame rate, full, the next spatial layer at half, full...) while the total
fits and its tile needs it (a larger picture, which costs a key frame, with more to spare and
not within SPATIAL_UP_HOLD_SECONDS of a move to a smaller one). The result is each
consumer's `bandwidth_cap` (a spatial layer: one of the caps its producer's layer choice
respects, sfu/producer.py, beside the tile's size and the loss cap) and its temporal target
(the forwarder drops the temporal layers above it, sfu/forwarding.py, keeping sequence
numbers and picture ids continuous).

The estimate cannot find room above what is sent: when the videos would use more than it
allows, the downlink probes. For PROBE_SECONDS it adds padding (RTX copies of the last packet
sent, which the subscriber drops as duplicates) so that what it sends reaches the probe's
target, and the estimator reads the rate those packets arrived at (the estimate when higher);
after a probe that the link carried the next may follow at once, after one it did not the next
waits 1 s, twice as long after each further failure (up to 5 s).

Without feedback (a subscriber that did not negotiate transport-cc, or stopped sending it) no
consumer is capped here: the loss cap stands in.

With SFU_DOWNLINK_TRACE_DIR set (the network lab sets it), each downlink writes what it sent
and the feedback it got to a gzipped JSON file there when it closes (`DownlinkTrace`): the
recorded traces the estimator's tests replay (sfu/tests/traces/).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfu.bwe import (
    PROBE_BACKOFF_MAX_S,
    PROBE_BACKOFF_START_S,
    PROBE_RESULT_TIMEOUT_S,
    PROBE_SUCCESS_RATIO,
    DownlinkEstimator,
)
from sfu.consumer import MAX_TEMPORAL_LAYER
from sfu.twcc import parse_transport_feedback

if TYPE_CHECKING:
    from sfu.consumer import Consumer
    from sfu.contract import DownlinkStats
    from sfu.negotiation import ReceiveTransport

logger = logging.getLogger(__name__)

# How often the estimate is shared out again.
ALLOCATION_SECONDS = 0.5
# Feedback older than this says nothing about the link any more: no caps from it.
FEEDBACK_STALE_SECONDS = 2.0
# What the SFU assumes a layer costs before it has measured it (the call client's encodings).
NOMINAL_LAYER_BPS = (150_000, 500_000, 1_500_000)
# A layer's rate up to each temporal layer, as a share of the whole, before it is measured
# (libwebrtc's split of a three-layer VP8 stream: 40 %, 60 %, 100 %).
TEMPORAL_SHARES = (0.4, 0.6, 1.0)
# Measured layer rates count RTP payloads: headers, SRTP and UDP/IP add about this much.
HEADER_OVERHEAD = 1.08
# Moving a video up needs the new total within this share of the estimate (so a move up is
# not undone by the next estimate's noise); staying needs it within the estimate.
MOVE_UP_SHARE = 0.9
# A move to a larger picture costs a key frame (a burst several times a frame's size, which a
# slow link's queue may not hold): it needs more room to spare, and waits this long after the
# viewer was last moved to a smaller picture (no see-saw of key frames).
SPATIAL_UP_SHARE = 0.8
SPATIAL_UP_HOLD_SECONDS = 8.0
# Probing (sfu/bwe.py's recommended policy): a probe lasts PROBE_SECONDS, its padding topped
# up every PROBE_TICK_SECONDS, reaching for at most PROBE_MAX_FACTOR x the estimate; it
# succeeded when the rate its packets arrived at is >= PROBE_SUCCESS_RATIO x its target (the
# next may follow at once), else the next waits PROBE_BACKOFF_START_S, doubling up to
# PROBE_BACKOFF_MAX_S; without a result PROBE_RESULT_TIMEOUT_S after it, it failed.
PROBE_SECONDS = 0.1
PROBE_TICK_SECONDS = 0.005
PROBE_MAX_FACTOR = 2.0
PROBE_MIN_BPS = 600_000
# The estimate must fall short of what the videos want by this factor for a probe.
PROBE_SHORTFALL = 0.9
# The viewer is told when its estimate has held a video below what its tile needs for this long
# (`downlinkLimited`), and when it has not for this long (no flapping, nothing said while the
# estimate ramps up at the start of a call).
LIMITED_HOLD_SECONDS = 5.0
# Padding for a probe stops when it would exceed this many packets per tick (a guard).
PROBE_MAX_PACKETS_PER_TICK = 40


# Where traces go (unset: none are recorded), and the most events one trace keeps.
TRACE_DIR_VARIABLE = "SFU_DOWNLINK_TRACE_DIR"
TRACE_MAX_EVENTS = 200_000


class DownlinkTrace:
    """What a downlink sent and the feedback it got, in order, for replaying the estimator:
    events `["s", sequence, size, send time, probe cluster]`, `["f", time, feedback hex]` and
    `["p", time, target bit/s, probe cluster]` (a probe started; times in seconds from the
    first event)."""

    def __init__(self, directory: Path, name: str) -> None:
        safe = "".join(c for c in name if c.isascii() and c.isalnum())[:32] or "peer"
        self.path = directory / f"downlink-{safe}-{uuid.uuid4().hex[:6]}.json.gz"
        self.events: list[list[object]] = []
        self._start: float | None = None

    def _time(self, now: float) -> float:
        if self._start is None:
            self._start = now
        return round(now - self._start, 6)

    def sent(self, sequence: int, size: int, now: float, cluster: int) -> None:
        if len(self.events) < TRACE_MAX_EVENTS:
            self.events.append(["s", sequence, size, self._time(now), cluster])

    def feedback(self, data: bytes, now: float) -> None:
        if len(self.events) < TRACE_MAX_EVENTS:
            self.events.append(["f", self._time(now), data.hex()])

    def probe(self, target_bps: int, now: float, cluster: int) -> None:
        if len(self.events) < TRACE_MAX_EVENTS:
            self.events.append(["p", self._time(now), target_bps, cluster])

    def write(self) -> None:
        if not self.events:
            return
        with gzip.open(self.path, "wt", encoding="ascii") as file:
            json.dump({"events": self.events}, file, separators=(",", ":"))


class Downlink:
    """The receive transport's transport-wide numbering, estimate, sharing and probing."""

    def __init__(self, receive: ReceiveTransport) -> None:
        self.receive = receive
        self.estimator = DownlinkEstimator()
        directory = os.environ.get(TRACE_DIR_VARIABLE)
        self.trace = (
            DownlinkTrace(Path(directory), receive.peer.display_name or receive.peer.id)
            if directory
            else None
        )
        self._sequence = 0
        self.feedback_packets = 0
        self.feedback_at_arrival = 0
        self.bad_feedback = 0
        self.last_feedback: float | None = None
        self.next_allocation = 0.0
        self.probe_cluster = -1
        self.probe_until = 0.0
        self.probes = 0
        self.probes_succeeded = 0
        self._probe_task: asyncio.Task[None] | None = None
        self._probe_target = 0  # of the probe waiting for its verdict (0: none)
        self._probe_backoff = PROBE_BACKOFF_START_S
        self._next_probe = 0.0
        self.closed = False
        # Whether the viewer was last told its downlink limits its videos, and since when the
        # estimate has said otherwise (None: it agrees).
        self.limited = False
        self._changed_since: float | None = None
        self._notifications: set[asyncio.Task[None]] = set()

    # --- numbering and feedback ------------------------------------------------------------
    def next_sequence(self) -> int:
        sequence = self._sequence
        self._sequence = (sequence + 1) & 0xFFFF
        return sequence

    def sent(self, sequence: int, size: int, now: float) -> None:
        cluster = self.probe_cluster if now < self.probe_until else -1
        self.estimator.on_packet_sent(sequence, size, now, cluster)
        if self.trace is not None:
            self.trace.sent(sequence, size, now, cluster)

    def on_feedback(self, data: bytes, at_arrival: bool = False) -> None:
        """One transport-wide feedback packet from the subscriber (from outside: a malformed
        one is counted and dropped); `at_arrival`: read as it arrived, not through aiortc's
        receive queue (sfu/hooks.py read_lone_feedback_at_arrival)."""
        now = time.monotonic()
        if at_arrival:
            self.feedback_at_arrival += 1
        if self.trace is not None:
            self.trace.feedback(data, now)
        try:
            feedback = parse_transport_feedback(data)
        except ValueError:
            self.bad_feedback += 1
            return
        try:
            self.estimator.on_feedback(feedback, now)
        except Exception:  # never let a subscriber's report break its transport's RTCP
            logger.exception("the downlink estimator failed on feedback")
            self.bad_feedback += 1
            return
        self.feedback_packets += 1
        self.last_feedback = now
        if now >= self.next_allocation:
            self.allocate(now)

    def estimating(self, now: float) -> bool:
        return self.last_feedback is not None and now - self.last_feedback < FEEDBACK_STALE_SECONDS

    # --- sharing ---------------------------------------------------------------------------
    def allocate(self, now: float) -> None:
        """Share the estimate among the subscriber's consumers; without a current estimate,
        uncap them."""
        self.next_allocation = now + ALLOCATION_SECONDS
        if not self.estimating(now):
            for consumer in self.receive.peer.consumers.values():
                self._set_cap(consumer, None, now)
            self._tell_limited(False, now)
            return
        self._review_probe(now)
        self.share(self.estimator.estimate_bps, now)

    def share(self, estimate_bps: int, now: float) -> None:
        """Share `estimate_bps` among the subscriber's forwarding consumers: each simulcast
        video's `bandwidth_cap` and temporal target (module docstring); a probe when they
        want more."""
        consumers = [c for c in self.receive.peer.consumers.values() if c.forwarding]
        budget = float(estimate_bps)
        layered: list[Consumer] = []
        for consumer in consumers:
            if consumer.kind == "video" and consumer.producer.simulcast:
                layered.append(consumer)
            else:
                budget -= consumer.meter.current_bitrate()
        choices: dict[str, list[Choice]] = {}
        costs: dict[str, list[float]] = {}
        chosen: dict[str, int] = {}  # index into the consumer's choices
        for consumer in layered:
            options = choices[consumer.id] = stream_choices(consumer, now)
            costs[consumer.id] = [choice_cost(consumer, choice) for choice in options]
            chosen[consumer.id] = 0
        spent = sum(costs[c.id][0] for c in layered)
        wanted_total = sum(costs[c.id][-1] for c in layered)
        # Round by round, in priority order, each video one step up while it fits: the room
        # is spread (two 360p videos at 15 fps rather than one at 720p and one at 7.5 fps).
        ordered = sorted(layered, key=self._priority)
        held = {c.id: held_choice(c, choices[c.id]) for c in layered}
        climbing = list(ordered)
        while climbing:
            still = []
            for consumer in climbing:
                current, cost = chosen[consumer.id], costs[consumer.id]
                step = current + 1
                if step >= len(cost):
                    continue
                total = spent - cost[current] + cost[step]
                limit = budget
                if step > held[consumer.id]:
                    limit = budget * MOVE_UP_SHARE
                    spatial = choices[consumer.id][step][0]
                    if consumer.bandwidth_cap is not None and spatial > consumer.bandwidth_cap:
                        if now - consumer.spatial_down_at < SPATIAL_UP_HOLD_SECONDS:
                            continue
                        limit = budget * SPATIAL_UP_SHARE
                if total > limit:
                    continue
                spent, chosen[consumer.id] = total, step
                still.append(consumer)
            climbing = still
        for consumer in layered:
            self._set_cap(consumer, choices[consumer.id][chosen[consumer.id]], now)
        self._tell_limited(
            any(chosen[c.id] < len(choices[c.id]) - 1 for c in layered), now, estimate_bps
        )
        if wanted_total > budget:
            self._maybe_probe(now, wanted_total + estimate_bps - budget)

    def _tell_limited(self, limited: bool, now: float, estimate_bps: int = 0) -> None:
        """Notify the viewer (`downlinkLimited`) once its estimate has held one of its videos
        below what the tile needs for LIMITED_HOLD_SECONDS, and once it has stopped for as
        long: the call client shows it on the viewer's own connection badge (its link, not the
        publishers', is what is short)."""
        if limited == self.limited:
            self._changed_since = None
            return
        if self._changed_since is None:
            self._changed_since = now
        if now - self._changed_since < LIMITED_HOLD_SECONDS:
            return
        self._changed_since = None
        self.limited = limited
        peer = self.receive.peer
        if peer.closed:
            return
        task = asyncio.get_running_loop().create_task(
            peer.notify("downlinkLimited", {"limited": limited, "estimate_bps": estimate_bps})
        )
        self._notifications.add(task)
        task.add_done_callback(self._notifications.discard)

    def _priority(self, consumer: Consumer) -> tuple[int, int]:
        producer = consumer.producer
        if producer.source == "screen":
            rank = 0
        elif producer.peer.id == self.receive.peer.router.active_speaker:
            rank = 1
        else:
            rank = 2
        area = (consumer.view_width or 0) * (consumer.view_height or 0)
        return rank, -area

    @staticmethod
    def _set_cap(consumer: Consumer, choice: Choice | None, now: float) -> None:
        """Apply a share: the highest spatial layer and the temporal target (None: no cap)."""
        cap, temporal = (None, MAX_TEMPORAL_LAYER) if choice is None else choice
        consumer.temporal_target = temporal
        if consumer.bandwidth_cap == cap:
            return
        if cap is not None and consumer.bandwidth_cap is not None and cap < consumer.bandwidth_cap:
            consumer.spatial_down_at = now
        consumer.bandwidth_cap = cap
        if consumer.forwarding and consumer.producer.simulcast:
            consumer.producer.retarget(consumer, now)

    # --- probing ---------------------------------------------------------------------------
    def _maybe_probe(self, now: float, wanted_bps: float) -> None:
        if self.closed or now < self._next_probe or self._probe_target:
            return
        estimate = self.estimator.estimate_bps
        if estimate >= wanted_bps * PROBE_SHORTFALL:
            return
        # Never smaller than PROBE_MIN_BPS: a probe at twice a collapsed estimate is a few
        # packets, too few for the estimator to measure, and would fail however fast the link.
        target = int(min(wanted_bps, max(estimate * PROBE_MAX_FACTOR, PROBE_MIN_BPS)))
        self.probes += 1
        self._probe_target = target
        self.probe_cluster = self.estimator.start_probe(target, now)
        if self.trace is not None:
            self.trace.probe(target, now, self.probe_cluster)
        self.probe_until = now + PROBE_SECONDS
        if self._probe_task is not None:
            self._probe_task.cancel()  # the last one's padding, if it has not noticed its end
        self._probe_task = asyncio.get_running_loop().create_task(
            self._pad(self.probe_cluster, target, now)
        )

    def _review_probe(self, now: float) -> None:
        """The last probe's verdict, once there is one: a success lets the next follow at once
        (the estimate it raised is the next one's base), a failure makes it wait longer."""
        if not self._probe_target or now < self.probe_until:
            return
        result = self.estimator.probe_result(self.probe_cluster)
        if result is None and now < self.probe_until + PROBE_RESULT_TIMEOUT_S:
            return
        if result is not None and result >= PROBE_SUCCESS_RATIO * self._probe_target:
            self.probes_succeeded += 1
            self._probe_backoff = PROBE_BACKOFF_START_S
            self._next_probe = now
        else:
            self._next_probe = now + self._probe_backoff
            self._probe_backoff = min(2 * self._probe_backoff, PROBE_BACKOFF_MAX_S)
        self._probe_target = 0

    async def _pad(self, cluster: int, target_bps: int, started: float) -> None:
        """Top up what is sent to `target_bps` with padding until probe `cluster` ends."""
        meter_start = self._bytes_sent()
        padding = 0
        try:
            while not self.closed and self.probe_cluster == cluster:
                now = time.monotonic()
                if now >= self.probe_until:
                    break
                due = target_bps / 8 * min(now - started + PROBE_TICK_SECONDS, PROBE_SECONDS)
                missing = due - (self._bytes_sent() - meter_start) - padding
                for _ in range(PROBE_MAX_PACKETS_PER_TICK):
                    if missing <= 0:
                        break
                    sent = self._send_padding(now)
                    if sent <= 0:
                        break
                    padding += sent
                    missing -= sent
                await asyncio.sleep(PROBE_TICK_SECONDS)
        finally:
            if self.probe_cluster == cluster:
                self.probe_until = min(self.probe_until, time.monotonic())

    def _outputs(self) -> Iterable[Any]:
        for slot in self.receive.slots:
            if slot.kind == "video" and slot.output is not None and slot.consumer_id:
                yield slot.output

    def _bytes_sent(self) -> int:
        return sum(c.meter.bytes for c in self.receive.peer.consumers.values())

    def _send_padding(self, now: float) -> int:
        for output in self._outputs():
            sent: int = output.send_padding(now)
            if sent > 0:
                return sent
        return 0

    def close(self) -> None:
        self.closed = True
        if self._probe_task is not None:
            self._probe_task.cancel()
        if self.trace is not None:
            trace, self.trace = self.trace, None
            try:
                trace.write()
            except OSError:
                logger.exception("could not write the downlink trace %s", trace.path)

    def describe(self) -> DownlinkStats:
        estimator = self.estimator.describe()
        return {
            "estimating": self.estimating(time.monotonic()),
            "estimate_bps": self.estimator.estimate_bps,
            "acknowledged_bps": self.estimator.acknowledged_bps,
            "delay_state": str(estimator.get("delay_state", "normal")),
            "loss_fraction": float(estimator.get("loss_fraction", 0.0)),  # type: ignore[arg-type]
            "feedback_packets": self.feedback_packets,
            "feedback_at_arrival": self.feedback_at_arrival,
            "bad_feedback": self.bad_feedback,
            "probes": self.probes,
            "probes_succeeded": self.probes_succeeded,
        }


Choice = tuple[int, int]  # (spatial layer, highest temporal layer)


def stream_choices(consumer: Consumer, now: float) -> list[Choice]:
    """What `consumer` could be sent, cheapest first: each spatial layer up to what its tile
    needs (sfu/producer.py layer_options) at full frame rate, and where the layers announce
    temporal layers, the lowest one at a quarter and half the frame rate too, and the others
    at half (a smaller picture is preferred to one below 15 fps)."""
    layers = consumer.producer.layers
    result: list[Choice] = []
    for position, index in enumerate(consumer.producer.layer_options(consumer, now)):
        count = min(layers[index].temporal_layers, MAX_TEMPORAL_LAYER + 1)
        if count >= MAX_TEMPORAL_LAYER + 1:
            lowest = 0 if position == 0 else MAX_TEMPORAL_LAYER - 1
            result.extend((index, temporal) for temporal in range(lowest, MAX_TEMPORAL_LAYER))
        result.append((index, MAX_TEMPORAL_LAYER))
    return result


def held_choice(consumer: Consumer, choices: list[Choice]) -> int:
    """The index of what `consumer` is held at now (the last of `choices` when uncapped)."""
    if consumer.bandwidth_cap is None:
        return len(choices) - 1
    held = (consumer.bandwidth_cap, consumer.temporal_target)
    below = [i for i, choice in enumerate(choices) if choice <= held]
    return below[-1] if below else 0


def choice_cost(consumer: Consumer, choice: Choice) -> float:
    """What forwarding `choice` to `consumer` costs, in bit/s: the layer's temporal layers up
    to the chosen one as measured, else their share of the whole layer's rate
    (TEMPORAL_SHARES, libwebrtc's split for three layers)."""
    index, temporal = choice
    whole = layer_cost(consumer, index)
    if temporal >= MAX_TEMPORAL_LAYER:
        return whole
    meters = consumer.producer.layers[index].temporal_meters
    measured = sum(meter.current_bitrate() for meter in meters[: temporal + 1])
    if measured > 0:
        return measured * HEADER_OVERHEAD
    return whole * TEMPORAL_SHARES[temporal]


def layer_cost(consumer: Consumer, index: int) -> float:
    """What forwarding the producer's layer `index` to `consumer` costs, in bit/s: measured
    where the layer sends, else NOMINAL_LAYER_BPS."""
    layers = consumer.producer.layers
    measured = layers[index].meter.current_bitrate()
    if measured > 0:
        return measured * HEADER_OVERHEAD
    nominal = NOMINAL_LAYER_BPS[max(0, len(NOMINAL_LAYER_BPS) - len(layers) + index)]
    return float(nominal)
