"""Per-viewer downlink bandwidth estimate from transport-wide congestion-control feedback.

What it estimates: the rate the path from this SFU to one viewer can carry now without building
a queue (`estimate_bps`), for the forwarder to choose simulcast layers / temporal layers by.
From what: every packet forwarded to the viewer carries a transport-wide sequence number; the
forwarder reports each one here (`on_packet_sent`: number, size, send time), and the browser
reports back, every 50 to 250 ms, which of them arrived and when on its own clock
(`on_feedback`, the packets `sfu.twcc.parse_transport_feedback` reads). Nothing decodes media.

The design is libwebrtc's send-side estimator (goog_cc), rewritten, not ported; the constants
are libwebrtc's unless said otherwise:

Delay-based part (a growing queue shows up as one-way delay growing faster than the send times):
  * Inter-arrival: packets sent within 5 ms of a group's first packet form one group (a burst,
    INTER_ARRIVAL_BURST_S); a packet that arrived within 5 ms of the group's last one and
    "caught up" (arrival delta < send delta) joins it too, up to 100 ms. Between consecutive
    groups the delay variation is (arrival delta - send delta). Groups arriving out of order
    are skipped (three in a row reset the filter), and an arrival clock that jumps by more
    than 3 s against the local clock resets it.
  * Trendline filter: the accumulated delay variation, exponentially smoothed (0.9), over the
    last 20 groups; its least-squares slope against arrival time is the trend (ms of queue
    per ms of time: 0.05 = sending 5 % above what the link drains).
  * Overuse detector: modified trend = trend x min(groups, 60) x 4 (the gain), compared with an
    adaptive threshold (start 12.5, k_up 0.0087/ms when above it, k_down 0.039/ms when below,
    clamped to 6..600, not adapted on outliers > threshold + 15). Overusing once above it for
    > 10 ms and two groups with a non-decreasing trend; underusing below -threshold.
  * AIMD rate control: overusing -> decrease to 0.85 x the acknowledged rate - 5 kbit/s (at
    most every 200 ms, or at once while the estimate is over twice the acknowledged rate);
    underusing -> hold (let the queue drain); normal -> increase: x 1.08 per second while far
    from the last link capacity estimate (the acknowledged rates at overuse, averaged),
    additively near it (about one packet per 300 ms response time: libwebrtc's default 200 ms
    RTT + 100 ms, since this estimator is RTT-free), never above 1.5 x the acknowledged rate
    + 10 kbit/s, so a viewer that is sent little is not credited with a fast link.

Loss-based part: the loss fraction is measured over >= 20 reported packets and >= 0.5 s, and
smoothed (half the newest window, half the previous value: both not in libwebrtc, which decides
per 20 packets: at 3 % random loss about one 20-packet window in 50 reads > 10 % and cuts the
rate). loss < 2 %: may increase 8 % per second (over the lowest value of the last second,
+ 1 kbit/s); 2 to 10 %: hold; > 10 %: rate x (1 - 0.5 x loss), at most once per 0.5 s
(libwebrtc's 300 ms + the assumed RTT) and per loss report. It never exceeds the delay-based
estimate; `estimate_bps` is the loss-based value, clamped to [min_bps, max_bps].

While the viewer is sent less than the estimate (nothing more to send), nothing tests the
headroom: the estimate can stand up to 1.5 x the acknowledged rate + 10 kbit/s whatever the
link is (libwebrtc's bound). Treat estimate_bps above acknowledged_bps as unverified: moving to
a layer set well above the acknowledged rate is what probing is for.

Acknowledged rate: bytes the receiver reported arriving over the last 0.5 s of its arrival
clock, over the time those reports cover (a lost feedback packet leaves a hole, not a dip),
once they cover 0.2 s (0 before).

Probe results: packets sent tagged with a probe cluster id (see `start_probe`) are measured
like libwebrtc's ProbeBitrateEstimator: once >= 80 % of a cluster's packets (and >= 4) are
reported, send rate = its bytes but the last over its send span, receive rate = its bytes but
the first over its arrival span (spans of 0 or over 1 s, or receive rate > 2 x send rate, are
rejected); the result is the lower of the two, or 0.95 x the receive rate when that is below
0.9 x the send rate (the link was saturated: aim just under what it delivered). A result above
the current estimate, while the delay detector is not overusing, becomes the estimate (both
parts) at once: that is how the estimate climbs faster than 8 %/s after the link got better.

Recommended probing policy (what the forwarder should do; the tests' simulated sender does it):
  * Probe only when the estimate is what holds the viewer back: the bitrate the viewer would
    get if the link allowed (its next layer set: "demand") exceeds estimate_bps / 0.9.
  * Target = min(demand, 2 x estimate_bps); cluster id = start_probe(target, now); send
    max(PROBE_MIN_PACKETS, PROBE_MIN_DURATION_S x target / packet bits) packets, paced at the
    target rate and tagged with the id (media due anyway, topped up with padding or RTX
    duplicates), the transport-wide sequence numbering continuing as usual.
  * Verdict: probe_result(id) once it is not None (one to two feedback intervals plus a round
    trip after the cluster). >= 0.7 x target: success, probe again at once (the target doubles
    from the raised estimate, as libwebrtc's exponential probing does) while demand still
    exceeds the estimate. Lower, or no result within PROBE_RESULT_TIMEOUT_S of the cluster's
    last packet (its packets were lost): failure, wait before the next one: 1 s, doubling up to
    5 s (PROBE_BACKOFF_*), reset by a success. A failed probe costs one short queue spike
    (and may make the delay-based part back off once), so keep clusters short.

Sent packets are kept in a ring of 2**16 slots indexed by the 16-bit sequence number (O(1) per
packet); a reported number is unwrapped against the last one sent, and one that was never sent,
was sent over 10 s ago, or was already reported received counts as unknown / duplicate.

`describe()` (for getStats): estimate_bps, acknowledged_bps, delay_based_bps, loss_based_bps,
delay_state (normal / overusing / underusing), rate_control_state (increase / decrease / hold),
overuse_threshold_ms, loss_fraction (smoothed), probes_sent, probes_succeeded (clusters whose
result raised the estimate), last_probe_bps, feedback_received, feedback_lost (gaps in
feedback_count), unknown_sequences, duplicate_reports. No RTT: none is measured.

Everything time-based takes explicit times (`now`, `send_time`: time.monotonic() seconds; the
receiver's arrival clock only by differences); nothing reads a clock here. Feedback comes from
outside: unknown or too old sequence numbers, duplicates, reordering, arrival times going
backwards, lost feedback packets are tolerated, never raise, and the rates stay finite and
within [min_bps, max_bps].
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import Final

from sfu.twcc import TransportFeedback

# --- Inter-arrival grouping -------------------------------------------------------------------
INTER_ARRIVAL_BURST_S: Final = 0.005  # a send burst: packets sent within 5 ms
MAX_BURST_DURATION_S: Final = 0.100  # an arrival burst joins a group for at most 100 ms
ARRIVAL_OFFSET_RESET_S: Final = 3.0  # the arrival clock jumped: start over
REORDERED_RESET_COUNT: Final = 3
STREAM_TIMEOUT_S: Final = 2.0  # no feedback with arrivals this long: start over

# --- Trendline filter and overuse detector ----------------------------------------------------
TRENDLINE_WINDOW: Final = 20
TRENDLINE_SMOOTHING: Final = 0.9
TRENDLINE_GAIN: Final = 4.0
MIN_NUM_DELTAS: Final = 60
DELTA_COUNTER_MAX: Final = 1000
THRESHOLD_START_MS: Final = 12.5
THRESHOLD_MIN_MS: Final = 6.0
THRESHOLD_MAX_MS: Final = 600.0
K_UP: Final = 0.0087
K_DOWN: Final = 0.039
MAX_ADAPT_OFFSET_MS: Final = 15.0
OVERUSING_TIME_THRESHOLD_MS: Final = 10.0

# --- AIMD rate control ------------------------------------------------------------------------
BETA: Final = 0.85  # decrease to 0.85 x the acknowledged rate
MULTIPLICATIVE_INCREASE_PER_S: Final = 1.08
INCREASE_LIMIT_FACTOR: Final = 1.5  # never above 1.5 x acknowledged + 10 kbit/s
INCREASE_LIMIT_EXTRA_BPS: Final = 10_000
ASSUMED_RTT_S: Final = 0.2  # libwebrtc's default RTT: no RTT is measured here
REDUCTION_INTERVAL_S: Final = 0.2  # libwebrtc: the RTT clamped to 10..200 ms
MIN_ADDITIVE_INCREASE_BPS_PER_S: Final = 4_000
ADDITIVE_PACKET_BYTES: Final = 1200
ADDITIVE_FRAME_INTERVAL_S: Final = 1 / 30

# --- Loss-based part --------------------------------------------------------------------------
LOSS_MIN_PACKETS: Final = 20
LOSS_MIN_WINDOW_S: Final = 0.5  # not in libwebrtc: fewer spurious decreases on random loss
LOSS_SMOOTHING: Final = 0.5  # not in libwebrtc: weight of the newest window's loss fraction
LOSS_LOW: Final = 0.02
LOSS_HIGH: Final = 0.10
LOSS_INCREASE_INTERVAL_S: Final = 1.0
LOSS_INCREASE_FACTOR: Final = 1.08  # over the lowest rate of the last LOSS_INCREASE_INTERVAL_S
LOSS_INCREASE_EXTRA_BPS: Final = 1000  # so that it never gets stuck at a low rate
LOSS_DECREASE_INTERVAL_S: Final = 0.3 + ASSUMED_RTT_S
LOSS_REPORT_TIMEOUT_S: Final = 6.0  # older loss reports no longer allow an increase

# --- Acknowledged rate ------------------------------------------------------------------------
ACKED_WINDOW_S: Final = 0.5
ACKED_MIN_SPAN_S: Final = 0.2

# --- Probes -----------------------------------------------------------------------------------
PROBE_MIN_PACKETS: Final = 5
PROBE_MIN_DURATION_S: Final = 0.015
PROBE_MIN_RECEIVED_RATIO: Final = 0.8
PROBE_MAX_INTERVAL_S: Final = 1.0
PROBE_MAX_RECEIVE_SEND_RATIO: Final = 2.0
PROBE_UNSATURATED_RATIO: Final = 0.9
PROBE_TARGET_UTILIZATION: Final = 0.95
PROBE_SUCCESS_RATIO: Final = 0.7  # for the caller's policy: result >= 0.7 x target
PROBE_RESULT_TIMEOUT_S: Final = 1.0
PROBE_BACKOFF_START_S: Final = 1.0
PROBE_BACKOFF_MAX_S: Final = 5.0
PROBE_CLUSTER_MAX_AGE_S: Final = 10.0

# --- Sent-packet history ----------------------------------------------------------------------
HISTORY_SLOTS: Final = 1 << 16  # one per 16-bit sequence number
MAX_FEEDBACK_AGE_S: Final = 10.0  # feedback on a packet sent longer ago: unknown

NORMAL, OVERUSING, UNDERUSING = "normal", "overusing", "underusing"
HOLD, INCREASE, DECREASE = "hold", "increase", "decrease"
_PENDING, _LOST, _RECEIVED = 0, 1, 2


class _Group:
    """Packets of one send burst, as the inter-arrival filter sees them."""

    __slots__ = ("complete", "first_arrival", "first_send", "send", "system")

    def __init__(self, send: float, arrival: float, system: float) -> None:
        self.first_send = send
        self.send = send  # the latest send time in the group
        self.first_arrival = arrival
        self.complete = arrival  # the latest arrival
        self.system = system  # local time the group's last packet was reported


class _InterArrival:
    """Groups packets into 5 ms send bursts; yields (send delta, arrival delta) in seconds
    between consecutive completed groups."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._current: _Group | None = None
        self._prev: _Group | None = None
        self._reordered = 0

    def add(self, send: float, arrival: float, system: float) -> tuple[float, float] | None:
        current = self._current
        if current is None:
            self._current = _Group(send, arrival, system)
            return None
        if send < current.first_send:  # sent before the current group: reordered, skipped
            return None
        if not self._new_group(current, send, arrival):
            if send > current.send:
                current.send = send
            current.complete = arrival
            current.system = system
            return None
        deltas: tuple[float, float] | None = None
        prev = self._prev
        if prev is not None:
            send_delta = current.send - prev.send
            arrival_delta = current.complete - prev.complete
            if arrival_delta - (current.system - prev.system) >= ARRIVAL_OFFSET_RESET_S:
                self.reset()
                return None
            if arrival_delta < 0:
                self._reordered += 1
                if self._reordered >= REORDERED_RESET_COUNT:
                    self.reset()
                return None
            self._reordered = 0
            deltas = (send_delta, arrival_delta)
        self._prev = current
        self._current = _Group(send, arrival, system)
        return deltas

    @staticmethod
    def _new_group(current: _Group, send: float, arrival: float) -> bool:
        send_delta = send - current.send
        if send_delta == 0:
            return False
        arrival_delta = arrival - current.complete
        if (
            arrival_delta - send_delta < 0
            and arrival_delta <= INTER_ARRIVAL_BURST_S
            and arrival - current.first_arrival < MAX_BURST_DURATION_S
        ):
            return False
        return send - current.first_send > INTER_ARRIVAL_BURST_S


class _TrendlineDetector:
    """Trendline filter over the delay variation and the adaptive-threshold overuse detector."""

    def __init__(self) -> None:
        self.threshold = THRESHOLD_START_MS
        self.reset()

    def reset(self) -> None:
        self._history = _SlidingFit()
        self._num_deltas = 0
        self._first_arrival_ms: float | None = None
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._prev_trend = 0.0
        self._last_threshold_update_ms: float | None = None
        self._time_over_using = -1.0
        self._overuse_counter = 0
        self.modified_trend = 0.0
        self.state = NORMAL

    def update(self, recv_delta_ms: float, send_delta_ms: float, arrival_ms: float) -> None:
        self._num_deltas = min(self._num_deltas + 1, DELTA_COUNTER_MAX)
        if self._first_arrival_ms is None:
            self._first_arrival_ms = arrival_ms
        self._accumulated += recv_delta_ms - send_delta_ms
        self._smoothed = (
            TRENDLINE_SMOOTHING * self._smoothed + (1 - TRENDLINE_SMOOTHING) * self._accumulated
        )
        self._history.add(arrival_ms - self._first_arrival_ms, self._smoothed)
        trend = self._prev_trend
        if len(self._history) == TRENDLINE_WINDOW:
            slope = self._history.slope()
            if slope is not None:
                trend = slope
        self._detect(trend, send_delta_ms, arrival_ms)

    def _detect(self, trend: float, send_delta_ms: float, now_ms: float) -> None:
        if self._num_deltas < 2:
            self.state = NORMAL
            return
        modified = min(self._num_deltas, MIN_NUM_DELTAS) * trend * TRENDLINE_GAIN
        self.modified_trend = modified
        if modified > self.threshold:
            if self._time_over_using == -1:
                self._time_over_using = send_delta_ms / 2
            else:
                self._time_over_using += send_delta_ms
            self._overuse_counter += 1
            if (
                self._time_over_using > OVERUSING_TIME_THRESHOLD_MS
                and self._overuse_counter > 1
                and trend >= self._prev_trend
            ):
                self._time_over_using = 0.0
                self._overuse_counter = 0
                self.state = OVERUSING
        elif modified < -self.threshold:
            self._time_over_using = -1.0
            self._overuse_counter = 0
            self.state = UNDERUSING
        else:
            self._time_over_using = -1.0
            self._overuse_counter = 0
            self.state = NORMAL
        self._prev_trend = trend
        self._update_threshold(modified, now_ms)

    def _update_threshold(self, modified: float, now_ms: float) -> None:
        last = self._last_threshold_update_ms
        self._last_threshold_update_ms = now_ms
        if last is None:
            last = now_ms
        if abs(modified) > self.threshold + MAX_ADAPT_OFFSET_MS:
            return  # a spike: do not let it drag the threshold up
        k = K_DOWN if abs(modified) < self.threshold else K_UP
        elapsed = min(max(now_ms - last, 0.0), 100.0)
        self.threshold += k * (abs(modified) - self.threshold) * elapsed
        self.threshold = min(max(self.threshold, THRESHOLD_MIN_MS), THRESHOLD_MAX_MS)


class _SlidingFit:
    """The least-squares slope of the last TRENDLINE_WINDOW points, kept as running sums (it is
    asked for at every packet group of every viewer). x is taken from a base that moves to the
    window's first point every REBASE_EVERY points, when the sums are recomputed, so they stay
    small and rounding cannot build up."""

    REBASE_EVERY = 256

    def __init__(self) -> None:
        self.points: deque[tuple[float, float]] = deque()
        self._base = 0.0
        self._added = 0
        self._sum_x = self._sum_y = self._sum_xy = self._sum_xx = 0.0

    def __len__(self) -> int:
        return len(self.points)

    def add(self, x: float, y: float) -> None:
        points = self.points
        if len(points) == TRENDLINE_WINDOW:
            old_x, old_y = points.popleft()
            old_x -= self._base
            self._sum_x -= old_x
            self._sum_y -= old_y
            self._sum_xy -= old_x * old_y
            self._sum_xx -= old_x * old_x
        points.append((x, y))
        self._added += 1
        if len(points) == 1 or self._added % self.REBASE_EVERY == 0:
            self._rebase()
            return
        x -= self._base
        self._sum_x += x
        self._sum_y += y
        self._sum_xy += x * y
        self._sum_xx += x * x

    def _rebase(self) -> None:
        self._base = self.points[0][0]
        self._sum_x = self._sum_y = self._sum_xy = self._sum_xx = 0.0
        for x, y in self.points:
            x -= self._base
            self._sum_x += x
            self._sum_y += y
            self._sum_xy += x * y
            self._sum_xx += x * x

    def slope(self) -> float | None:
        n = len(self.points)
        if n < 2:
            return None
        denominator = self._sum_xx - self._sum_x * self._sum_x / n
        if denominator <= 1e-9 * max(self._sum_xx, 1.0):
            return None
        return (self._sum_xy - self._sum_x * self._sum_y / n) / denominator


class _LinkCapacity:
    """The acknowledged rates seen at overuse, averaged, with their spread (kbit/s)."""

    def __init__(self) -> None:
        self.estimate_kbps: float | None = None
        self._deviation_kbps = 0.4

    def reset(self) -> None:
        self.estimate_kbps = None

    def _deviation(self) -> float:
        return math.sqrt(self._deviation_kbps * (self.estimate_kbps or 0.0))

    def upper_bound_bps(self) -> float:
        if self.estimate_kbps is None:
            return math.inf
        return (self.estimate_kbps + 3 * self._deviation()) * 1000

    def lower_bound_bps(self) -> float:
        if self.estimate_kbps is None:
            return 0.0
        return max(0.0, self.estimate_kbps - 3 * self._deviation()) * 1000

    def on_overuse(self, acknowledged_bps: float) -> None:
        sample = acknowledged_bps / 1000
        alpha = 0.05
        if self.estimate_kbps is None:
            self.estimate_kbps = sample
        else:
            self.estimate_kbps = (1 - alpha) * self.estimate_kbps + alpha * sample
        error = self.estimate_kbps - sample
        norm = max(self.estimate_kbps, 1.0)
        deviation = (1 - alpha) * self._deviation_kbps + alpha * error * error / norm
        self._deviation_kbps = min(max(deviation, 0.4), 2.5)


class _AimdRateControl:
    def __init__(self, start_bps: float, min_bps: float, max_bps: float) -> None:
        self.current = start_bps
        self._min = min_bps
        self._max = max_bps
        self.state = HOLD
        self.link = _LinkCapacity()
        self._latest_throughput = start_bps
        self._time_last_change: float | None = None

    def _clamp(self, bps: float) -> float:
        return min(max(bps, self._min), self._max)

    def time_to_reduce_further(self, now: float, acknowledged_bps: float) -> bool:
        last = self._time_last_change
        if last is None or now - last >= REDUCTION_INTERVAL_S or now < last:
            return True
        return acknowledged_bps < 0.5 * self.current

    def initial_time_to_reduce(self, now: float) -> bool:
        last = self._time_last_change
        return last is None or not 0 <= now - last < REDUCTION_INTERVAL_S

    def set_estimate(self, bps: float, now: float) -> None:
        self.current = self._clamp(bps)
        self._time_last_change = now

    def update(self, usage: str, acknowledged_bps: float | None, now: float) -> None:
        if acknowledged_bps is not None:
            self._latest_throughput = acknowledged_bps
        throughput = self._latest_throughput
        if usage == OVERUSING:
            if self.state != DECREASE:
                self.state = DECREASE
        elif usage == UNDERUSING:
            self.state = HOLD
        elif self.state == HOLD:
            self._time_last_change = now
            self.state = INCREASE
        if self.state == INCREASE:
            self._increase(throughput, now)
        elif self.state == DECREASE:
            self._decrease(throughput, now)

    def _increase(self, throughput: float, now: float) -> None:
        if throughput > self.link.upper_bound_bps():
            self.link.reset()  # well past the capacity we knew: it changed, search again
        limit = INCREASE_LIMIT_FACTOR * throughput + INCREASE_LIMIT_EXTRA_BPS
        last = self._time_last_change
        elapsed = 0.0 if last is None else min(max(now - last, 0.0), 1.0)
        if self.current < limit:
            if self.link.estimate_kbps is not None:
                increase = self._near_max_increase_bps_per_s() * elapsed
            else:
                alpha = MULTIPLICATIVE_INCREASE_PER_S**elapsed
                increase = max(self.current * (alpha - 1), 1000.0)
            self.current = self._clamp(min(self.current + increase, limit))
        self._time_last_change = now

    def _near_max_increase_bps_per_s(self) -> float:
        frame_bytes = self.current * ADDITIVE_FRAME_INTERVAL_S / 8
        packets_per_frame = max(math.ceil(frame_bytes / ADDITIVE_PACKET_BYTES), 1)
        packet_bits = frame_bytes / packets_per_frame * 8
        response_time = ASSUMED_RTT_S + 0.1
        return max(MIN_ADDITIVE_INCREASE_BPS_PER_S, packet_bits / response_time)

    def _decrease(self, throughput: float, now: float) -> None:
        decreased = throughput * BETA
        if decreased > 5000:
            decreased -= 5000  # just under what got through
        if decreased > self.current and self.link.estimate_kbps is not None:
            decreased = BETA * self.link.estimate_kbps * 1000
        if decreased < self.current:
            self.current = self._clamp(decreased)
        if throughput < self.link.lower_bound_bps():
            self.link.reset()  # far below the capacity we knew: it changed
        self.link.on_overuse(throughput)
        self.state = HOLD
        self._time_last_change = now


class _LossBased:
    def __init__(self, start_bps: float, min_bps: float, max_bps: float) -> None:
        self.current = start_bps
        self._min = min_bps
        self._max = max_bps
        self._history: deque[tuple[float, float]] = deque()  # (time, rate): sliding minimum
        self.loss_fraction = 0.0
        self._last_report: float | None = None
        self._decreased_since_report = False
        self._time_last_decrease: float | None = None
        self._lost = 0
        self._expected = 0
        self._window_start: float | None = None

    def on_reported(self, lost: int, expected: int, now: float) -> None:
        if expected <= 0:
            return
        if self._window_start is None or now < self._window_start:
            self._window_start = now
        self._lost += lost
        self._expected += expected
        if self._expected < LOSS_MIN_PACKETS or now - self._window_start < LOSS_MIN_WINDOW_S:
            return
        fraction = min(max(self._lost / self._expected, 0.0), 1.0)
        if self._last_report is None:
            self.loss_fraction = fraction
        else:
            self.loss_fraction += LOSS_SMOOTHING * (fraction - self.loss_fraction)
        self._lost = self._expected = 0
        self._window_start = now
        self._last_report = now
        self._decreased_since_report = False

    def set_rate(self, bps: float, delay_limit: float) -> None:
        """A probe result: taken as is, and the increase starts over from it."""
        self._set(bps, delay_limit)
        self._history.clear()

    def update(self, now: float, delay_limit: float) -> None:
        self._update_history(now)
        report = self._last_report
        if report is not None and 0 <= now - report < LOSS_REPORT_TIMEOUT_S:
            if self.loss_fraction <= LOSS_LOW:
                increased = self._history[0][1] * LOSS_INCREASE_FACTOR + LOSS_INCREASE_EXTRA_BPS
                self._set(increased, delay_limit)
                return
            if self.loss_fraction > LOSS_HIGH and not self._decreased_since_report:
                last = self._time_last_decrease
                if last is None or not 0 <= now - last < LOSS_DECREASE_INTERVAL_S:
                    self._time_last_decrease = now
                    self._decreased_since_report = True
                    self._set(self.current * (1 - 0.5 * self.loss_fraction), delay_limit)
                    return
        self._set(self.current, delay_limit)

    def _update_history(self, now: float) -> None:
        history = self._history
        while history and not 0 <= now - history[0][0] < LOSS_INCREASE_INTERVAL_S:
            history.popleft()
        while history and self.current <= history[-1][1]:
            history.pop()
        history.append((now, self.current))

    def _set(self, bps: float, delay_limit: float) -> None:
        self.current = max(min(bps, delay_limit, self._max), self._min)


class _ProbeCluster:
    __slots__ = (
        "first_receive",
        "first_receive_size",
        "first_send",
        "last_receive",
        "last_send",
        "last_send_size",
        "received",
        "received_bytes",
        "result",
        "sent",
        "started",
        "succeeded",
        "target",
    )

    def __init__(self, target: int, started: float) -> None:
        self.target = target
        self.started = started
        self.sent = 0
        self.received = 0
        self.received_bytes = 0
        self.first_send = math.inf
        self.last_send = -math.inf
        self.last_send_size = 0
        self.first_receive = math.inf
        self.last_receive = -math.inf
        self.first_receive_size = 0
        self.result: int | None = None
        self.succeeded = False

    def add(self, send: float, arrival: float, size: int) -> None:
        self.received += 1
        self.received_bytes += size
        if send < self.first_send:
            self.first_send = send
        if send > self.last_send:
            self.last_send = send
            self.last_send_size = size
        if arrival < self.first_receive:
            self.first_receive = arrival
            self.first_receive_size = size
        if arrival > self.last_receive:
            self.last_receive = arrival

    def measure(self) -> float | None:
        """The rate this cluster shows the link carries, or None (too few, or not credible)."""
        needed = PROBE_MIN_RECEIVED_RATIO * max(self.sent, PROBE_MIN_PACKETS)
        if self.received < needed:
            return None
        send_interval = self.last_send - self.first_send
        receive_interval = self.last_receive - self.first_receive
        if not (0 < send_interval <= PROBE_MAX_INTERVAL_S):
            return None
        if not (0 < receive_interval <= PROBE_MAX_INTERVAL_S):
            return None
        send_rate = (self.received_bytes - self.last_send_size) * 8 / send_interval
        receive_rate = (self.received_bytes - self.first_receive_size) * 8 / receive_interval
        if receive_rate > PROBE_MAX_RECEIVE_SEND_RATIO * send_rate:
            return None
        if receive_rate < PROBE_UNSATURATED_RATIO * send_rate:
            return PROBE_TARGET_UTILIZATION * receive_rate
        return min(send_rate, receive_rate)


class _AcknowledgedRate:
    """Bytes reported received over the last ACKED_WINDOW_S of the receiver's arrival clock,
    divided by the time the reports cover. A report that follows the previous one (the next
    feedback_count) covers from the previous report's last arrival to its own last; after a
    lost report (a gap in feedback_count), out of order, or after a reset, only its own span,
    its first packet's bytes left out: a lost report is a hole in the record, not a slowdown.
    """

    def __init__(self) -> None:
        self._rate: float | None = None  # the last one measured over enough time
        self.reset()

    def reset(self) -> None:
        """A new record (the arrival clock jumped, or the reports paused). The last rate
        measured stands until the new record covers enough time: without it, an overuse
        right after a pause would halve the estimate again and again (the no-rate-yet rule
        of a fresh estimator), which took an unshaped viewer from 1.8 Mbit/s to 106 kbit/s
        in the lab on a starved machine."""
        self._segments: deque[tuple[float, float, int]] = deque()  # (start, end, bytes)
        self._end: float | None = None

    def add(self, arrivals: list[tuple[float, int]], contiguous: bool) -> None:
        """One report's newly received packets: (arrival s, size), in arrival order."""
        if not arrivals:
            return
        first, first_size = arrivals[0]
        last = arrivals[-1][0]
        total = sum(size for _, size in arrivals)
        end = self._end
        if contiguous and end is not None and end <= first:
            start = end
        else:
            start = first
            total -= first_size
        if last > start:
            self._segments.append((start, last, total))
        if end is None or last > end:
            self._end = end = last
        cutoff = end - ACKED_WINDOW_S
        segments = self._segments
        while segments and segments[0][1] <= cutoff:
            segments.popleft()
        covered = 0.0
        received = 0.0
        for segment_start, segment_end, size in segments:
            if segment_start >= cutoff:  # wholly inside (most of them)
                covered += segment_end - segment_start
                received += size
                continue
            inside = segment_end - cutoff
            if inside > 0:
                covered += inside
                received += size * inside / (segment_end - segment_start)
        if covered >= ACKED_MIN_SPAN_S:
            self._rate = received * 8 / covered

    def rate(self) -> float | None:
        return self._rate


class DownlinkEstimator:
    """One viewer's downlink: fed every packet sent to it and the feedback it returns."""

    def __init__(
        self, start_bps: int = 1_000_000, min_bps: int = 100_000, max_bps: int = 20_000_000
    ) -> None:
        self._min_bps = max(int(min_bps), 1)
        self._max_bps = max(int(max_bps), self._min_bps)
        start = float(min(max(int(start_bps), self._min_bps), self._max_bps))
        # Sent-packet history, one slot per 16-bit sequence number, in typed arrays (25 bytes a
        # slot, 1.6 MB a viewer): a tuple per slot held ≈ 150 bytes of objects once the ring
        # had wrapped, 10 MB a viewer (40 viewers: 400 MB against 75 MB now, measured), for
        # the same time per recorded send. _sent_unwrapped is -1 where nothing was sent; what
        # the feedback said about a packet is in _status.
        self._sent_unwrapped = array("q", [-1]) * HISTORY_SLOTS
        self._sent_time = array("d", [0.0]) * HISTORY_SLOTS
        self._sent_size = array("i", [0]) * HISTORY_SLOTS
        self._sent_cluster = array("i", [-1]) * HISTORY_SLOTS
        self._status = bytearray(HISTORY_SLOTS)
        self._started = False
        self._last_seq16 = 0
        self._last_unwrapped = 0

        self._inter_arrival = _InterArrival()
        self._detector = _TrendlineDetector()
        self._aimd = _AimdRateControl(start, self._min_bps, self._max_bps)
        self._loss = _LossBased(start, self._min_bps, self._max_bps)
        self._acked = _AcknowledgedRate()
        self._clock_offset: float | None = None  # arrival clock - send clock, seconds
        self._last_arrival_feedback: float | None = None

        self._clusters: dict[int, _ProbeCluster] = {}
        self._next_cluster = 0
        self._probes_sent = 0
        self._probes_succeeded = 0
        self._last_probe_bps = 0

        self._feedback_received = 0
        self._feedback_lost = 0
        self._last_feedback_count: int | None = None
        self._unknown = 0
        self._duplicates = 0
        self._estimate = int(start)

    # -- the per-packet path: keep it trivial --------------------------------------------------

    def on_packet_sent(
        self, sequence: int, size: int, send_time: float, probe_cluster: int = -1
    ) -> None:
        seq16 = sequence & 0xFFFF
        if self._started:
            delta = (seq16 - self._last_seq16) & 0xFFFF
            if delta >= 0x8000:
                delta -= 0x10000
            unwrapped = self._last_unwrapped + delta
            if delta > 0:
                self._last_seq16 = seq16
                self._last_unwrapped = unwrapped
        else:
            self._started = True
            self._last_seq16 = unwrapped = seq16
            self._last_unwrapped = seq16
        self._sent_unwrapped[seq16] = unwrapped
        self._sent_time[seq16] = send_time
        self._sent_size[seq16] = size
        self._sent_cluster[seq16] = probe_cluster
        self._status[seq16] = _PENDING
        if probe_cluster >= 0:
            cluster = self._clusters.get(probe_cluster)
            if cluster is not None:
                cluster.sent += 1

    # -- feedback ------------------------------------------------------------------------------

    def on_feedback(self, feedback: TransportFeedback, now: float) -> None:
        self._feedback_received += 1
        count = feedback.feedback_count & 0xFF
        last_count = self._last_feedback_count
        contiguous = last_count is not None and count == (last_count + 1) & 0xFF
        if last_count is None:
            self._last_feedback_count = count
        else:
            gap = (count - last_count - 1) & 0xFF
            if gap < 0x80:  # otherwise a duplicate or a late one
                self._feedback_lost += gap
                self._last_feedback_count = count
        if not self._started:
            self._unknown += len(feedback.packets)
            return

        received, lost, expected = self._match(feedback, now)
        if received:
            self._on_arrivals(received, now, contiguous)
        self._loss.on_reported(lost, expected, now)
        probe_bps = self._probe_results(received)

        delay_state = self._detector.state
        aimd = self._aimd
        if received:
            acked = self._acked.rate()
            if delay_state == OVERUSING:
                if acked is not None:
                    if aimd.time_to_reduce_further(now, acked):
                        aimd.update(OVERUSING, acked, now)
                elif aimd.initial_time_to_reduce(now):
                    aimd.set_estimate(aimd.current / 2, now)  # overuse before any rate known
            elif probe_bps is not None and probe_bps > self._estimate:
                aimd.set_estimate(max(aimd.current, probe_bps), now)
                self._loss.set_rate(probe_bps, aimd.current)
            else:
                aimd.update(delay_state, acked, now)
        self._loss.update(now, aimd.current)
        estimate = self._loss.current
        if not math.isfinite(estimate):
            estimate = self._min_bps
        self._estimate = round(min(max(estimate, self._min_bps), self._max_bps))

    def _match(
        self, feedback: TransportFeedback, now: float
    ) -> tuple[list[tuple[int, int, float, int, int]], int, int]:
        """The reported packets we sent: (arrival µs, sequence, send time, size, cluster) of
        those newly received, how many newly reported lost, how many newly reported."""
        sent_unwrapped = self._sent_unwrapped
        sent_time = self._sent_time
        status = self._status
        last16 = self._last_seq16
        last = self._last_unwrapped
        oldest = now - MAX_FEEDBACK_AGE_S
        latest = now + 1.0
        received: list[tuple[int, int, float, int, int]] = []
        lost = expected = 0
        for sequence, arrival in feedback.packets:
            seq16 = sequence & 0xFFFF
            unwrapped = sent_unwrapped[seq16]
            send_time = sent_time[seq16]
            if (
                unwrapped < 0
                or unwrapped != last - ((last16 - seq16) & 0xFFFF)
                or not oldest <= send_time <= latest
            ):
                self._unknown += 1
                continue
            state = status[seq16]
            if arrival is None:
                if state == _PENDING:
                    status[seq16] = _LOST
                    lost += 1
                    expected += 1
                continue
            if state == _RECEIVED:
                self._duplicates += 1
                continue
            if state == _PENDING:
                expected += 1
            status[seq16] = _RECEIVED
            received.append(
                (arrival, unwrapped, send_time, self._sent_size[seq16], self._sent_cluster[seq16])
            )
        received.sort()
        return received, lost, expected

    def _on_arrivals(
        self, received: list[tuple[int, int, float, int, int]], now: float, contiguous: bool
    ) -> None:
        last_seen = self._last_arrival_feedback
        if last_seen is not None and not 0 <= now - last_seen < STREAM_TIMEOUT_S:
            self._reset_delay()
            contiguous = False
        self._last_arrival_feedback = now
        inter_arrival = self._inter_arrival
        detector = self._detector
        clusters = self._clusters
        arrivals: list[tuple[float, int]] = []
        for arrival_us, _, send_time, size, cluster_id in received:
            arrival = arrival_us / 1e6
            offset = arrival - send_time
            reference = self._clock_offset
            if reference is not None and abs(offset - reference) > ARRIVAL_OFFSET_RESET_S:
                self._reset_delay()  # resets those objects in place
                arrivals.clear()
                contiguous = False
            self._clock_offset = offset
            arrivals.append((arrival, size))
            if cluster_id >= 0:
                cluster = clusters.get(cluster_id)
                if cluster is not None:
                    cluster.add(send_time, arrival, size)
            deltas = inter_arrival.add(send_time, arrival, now)
            if deltas is not None:
                send_delta, arrival_delta = deltas
                detector.update(arrival_delta * 1000, send_delta * 1000, arrival * 1000)
        self._acked.add(arrivals, contiguous)

    def _reset_delay(self) -> None:
        """The arrival clock jumped or the stream paused: the delay history means nothing."""
        self._inter_arrival.reset()
        self._detector.reset()
        self._acked.reset()
        self._clock_offset = None

    def _probe_results(self, received: list[tuple[int, int, float, int, int]]) -> float | None:
        best: float | None = None
        touched = {entry[4] for entry in received if entry[4] >= 0}
        for cluster_id in touched:
            cluster = self._clusters.get(cluster_id)
            if cluster is None:
                continue
            rate = cluster.measure()
            if rate is None or not math.isfinite(rate) or rate <= 0:
                continue
            rate = min(max(rate, self._min_bps), self._max_bps)
            cluster.result = round(rate)
            self._last_probe_bps = round(rate)
            if not cluster.succeeded and rate > self._estimate:
                cluster.succeeded = True
                self._probes_succeeded += 1
            if best is None or rate > best:
                best = rate
        return best

    # -- probes --------------------------------------------------------------------------------

    def start_probe(self, target_bps: int, now: float) -> int:
        """A new probe cluster at `target_bps`: tag the packets sent for it with the id."""
        stale = [
            key
            for key, cluster in self._clusters.items()
            if not 0 <= now - cluster.started < PROBE_CLUSTER_MAX_AGE_S
        ]
        for key in stale:
            del self._clusters[key]
        cluster_id = self._next_cluster
        self._next_cluster = (cluster_id + 1) & 0x7FFFFFFF
        target = min(max(int(target_bps), self._min_bps), self._max_bps)
        self._clusters[cluster_id] = _ProbeCluster(target, now)
        self._probes_sent += 1
        return cluster_id

    def probe_result(self, cluster: int) -> int | None:
        """What the link carried for that cluster, once enough of it was reported; else None."""
        probe = self._clusters.get(cluster)
        return None if probe is None else probe.result

    # -- results -------------------------------------------------------------------------------

    @property
    def estimate_bps(self) -> int:
        return self._estimate

    @property
    def acknowledged_bps(self) -> int:
        rate = self._acked.rate()
        if rate is None or not math.isfinite(rate):
            return 0
        return max(round(rate), 0)

    def describe(self) -> dict[str, object]:
        return {
            "estimate_bps": self._estimate,
            "acknowledged_bps": self.acknowledged_bps,
            "delay_based_bps": round(self._aimd.current),
            "loss_based_bps": round(self._loss.current),
            "delay_state": self._detector.state,
            "rate_control_state": self._aimd.state,
            "overuse_threshold_ms": round(self._detector.threshold, 2),
            "loss_fraction": round(self._loss.loss_fraction, 4),
            "probes_sent": self._probes_sent,
            "probes_succeeded": self._probes_succeeded,
            "last_probe_bps": self._last_probe_bps,
            "feedback_received": self._feedback_received,
            "feedback_lost": self._feedback_lost,
            "unknown_sequences": self._unknown,
            "duplicate_reports": self._duplicates,
        }
