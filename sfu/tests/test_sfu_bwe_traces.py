"""The downlink estimator on recorded traces: what the SFU sent to a real Chromium viewer in
the network lab and the transport-wide feedback that Chromium returned, replayed through a
fresh `DownlinkEstimator` (sends, probe starts and feedback in their recorded order and times).

The traces (sfu/tests/traces/, recorded with `bench/netlab.py --traces DIR`: the node's
SFU_DOWNLINK_TRACE_DIR) come from three-person calls on a busy 2-core machine, so they carry
real Chromium's feedback cadence, its arrival-time jitter under load, real tbf queues and
drops: what the simulated traces in test_sfu_bwe.py only model.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sfu.bwe import DownlinkEstimator
from sfu.twcc import parse_transport_feedback

TRACES = Path(__file__).parent / "traces"


@dataclass
class Replay:
    # (time s, estimate bit/s, acknowledged bit/s) after each feedback
    samples: list[tuple[float, int, int]]
    bad_feedback: int

    def estimates_between(self, start: float, end: float) -> list[int]:
        return [estimate for at, estimate, _ in self.samples if start <= at < end]

    def first_time(self, after: float, condition: Callable[[int], bool]) -> float | None:
        return next((at for at, e, _ in self.samples if at >= after and condition(e)), None)


def replay(name: str) -> Replay:
    with gzip.open(TRACES / name, "rt", encoding="ascii") as file:
        events = json.load(file)["events"]
    estimator = DownlinkEstimator()
    samples: list[tuple[float, int, int]] = []
    bad = 0
    for event in events:
        kind = event[0]
        if kind == "s":
            _, sequence, size, at, cluster = event
            estimator.on_packet_sent(sequence, size, at, cluster)
        elif kind == "p":
            _, at, target, cluster = event
            assert estimator.start_probe(target, at) == cluster  # ids replay in order
        else:
            _, at, data = event
            try:
                feedback = parse_transport_feedback(bytes.fromhex(data))
            except ValueError:
                bad += 1
                continue
            estimator.on_feedback(feedback, at)
            samples.append((at, estimator.estimate_bps, estimator.acknowledged_bps))
    return Replay(samples, bad)


def test_real_chromium_feedback_parses_and_drives_the_estimate() -> None:
    traces = sorted(TRACES.glob("*.json.gz"))
    assert traces, "no recorded traces"
    for trace in traces:
        result = replay(trace.name)
        assert result.bad_feedback == 0, trace.name
        assert len(result.samples) > 100, trace.name


# The shaped viewer's link (bench/netlab.py --scenario step-down, 2026-12-04 08:15 UTC, three
# Chromium on a 99 % busy machine): 5 Mbit/s, 800 kbit/s from 25 s of its trace (the lab's
# step at 15 s of its window), 5 Mbit/s again from 40 s; 25 ms each way, an 80 ms tbf queue.
DROP_S, RECOVERY_S = 25.0, 40.0


def test_an_unshaped_viewers_estimate_stays_high_on_real_feedback() -> None:
    result = replay("step-down-unshaped-viewer.json.gz")
    after_start = result.estimates_between(10.0, 1e9)
    assert min(after_start) >= 1_000_000, result.samples[::20]


def test_the_estimate_follows_a_real_link_down_within_3_s_and_up_again_within_10_s() -> None:
    result = replay("step-down-shaped-viewer.json.gz")
    # 5 Mbit/s: the estimate is not what holds the viewer back (it wants ≈ 1 Mbit/s).
    assert min(result.estimates_between(10.0, DROP_S)) >= 1_200_000
    # Down to 800 kbit/s: below the link within 3 s, and on average under it while it lasts.
    down = result.first_time(DROP_S, lambda estimate: estimate <= 800_000)
    assert down is not None
    assert down - DROP_S <= 3.0, down
    during = result.estimates_between(DROP_S + 3.0, RECOVERY_S)
    assert sum(during) / len(during) <= 800_000
    assert max(during) <= 1_100_000
    # 5 Mbit/s again: above 1 Mbit/s (both videos at 360p) within 10 s.
    up = result.first_time(RECOVERY_S, lambda estimate: estimate >= 1_000_000)
    assert up is not None
    assert up - RECOVERY_S <= 10.0, up
