"""The per-viewer-quality issue's targets for each network-lab scenario, checked against one
run's figures (bench/netlab.py), so that a run says "met" or "not met" beside its tables rather
than leaving the comparison to the reader.

Each verdict names the target, what the run measured and whether it is met: True, False, or
None where the run cannot say (no unshaped call in the run to compare key frames with, a
phase without samples, or freezes whose individual lengths getStats does not give). The
figures are the browsers' own (getStats over the window), summarized by bench/netlab_stats.py.

The shaped participant is the call's last; "the others" are everyone else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MIN_FPS_SHAPED = 15.0  # one-slow-viewer: that viewer keeps every video at >= 15 fps
MAX_FREEZES_PER_MIN = 1.0
MAX_RTT_MS = 250.0
OTHERS_MIN_HEIGHT = 360  # the others still see each other at >= 640x360
OTHERS_MIN_FPS = 25.0
STEP_DOWN_WITHIN_S = 3.0
STEP_UP_WITHIN_S = 10.0
LONGEST_FREEZE_S = 1.0
LOSSY_VIEWER_MIN_FPS = 25.0


@dataclass(frozen=True)
class Verdict:
    call: str
    target: str
    measured: str
    met: bool | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(results: dict[str, Any]) -> list[Verdict]:
    """Every target of every call's scenario (calls that failed are skipped)."""
    calls = [call for call in results.get("calls", []) if "error" not in call]
    verdicts: list[Verdict] = []
    for call in calls:
        scenario = call["label"].rsplit(" ", 1)[0]
        check = _CHECKS.get(scenario)
        if check is not None:
            verdicts.extend(check(call, calls))
    return verdicts


def _shaped(call: dict[str, Any]) -> str:
    return str(call["participants"][-1]["name"])


def _videos_of(call: dict[str, Any], viewer: str) -> dict[str, dict[str, Any]]:
    return dict(call["viewers"].get(viewer, {}).get("videos", {}))


def _others_see_each_other(call: dict[str, Any]) -> Verdict:
    """Among the participants other than the shaped one: every video at >= 640x360, >= 25 fps."""
    shaped = _shaped(call)
    heights: list[int] = []
    rates: list[float] = []
    for viewer in call["viewers"]:
        if viewer == shaped:
            continue
        for publisher, video in _videos_of(call, viewer).items():
            if publisher == shaped:
                continue
            heights.append(int(video.get("min_frame_height") or video.get("frame_height") or 0))
            rates.append(float(video.get("fps") or 0.0))
    target = f"the others see each other at >= 640x360 and >= {OTHERS_MIN_FPS:g} fps"
    if not rates:
        return Verdict(call["label"], target, "no videos among the others", None)
    measured = f"lowest {min(heights)}p, lowest {min(rates):.1f} fps"
    met = min(heights) >= OTHERS_MIN_HEIGHT and min(rates) >= OTHERS_MIN_FPS
    return Verdict(call["label"], target, measured, met)


def _key_frames(call: dict[str, Any]) -> int:
    return sum(
        int(encoding.get("key_frames") or 0)
        for publisher in call.get("publishers", {}).values()
        for encoding in publisher.get("encodings", {}).values()
    )


def _no_more_key_frames(call: dict[str, Any], calls: list[dict[str, Any]]) -> Verdict:
    """No more key frames encoded than in the unshaped call with the same feature setting."""
    variant = call["label"].rsplit(" ", 1)[1]
    target = "no more key frames than in the unshaped call"
    baseline = next((c for c in calls if c["label"] == f"unshaped {variant}"), None)
    here = _key_frames(call)
    if baseline is None:
        return Verdict(
            call["label"], target, f"{here} key frames; no unshaped call in the run", None
        )
    there = _key_frames(baseline)
    # Windows of different lengths would not compare; the calls of one run share the window.
    return Verdict(call["label"], target, f"{here} key frames, unshaped {there}", here <= there)


def _one_slow_viewer(call: dict[str, Any], calls: list[dict[str, Any]]) -> list[Verdict]:
    label = call["label"]
    shaped = _shaped(call)
    videos = _videos_of(call, shaped)
    verdicts = []
    if videos:
        fps = min(float(v.get("fps") or 0.0) for v in videos.values())
        freezes = max(float(v.get("freezes_per_min") or 0.0) for v in videos.values())
        verdicts.append(
            Verdict(
                label,
                f"{shaped} keeps every video at >= {MIN_FPS_SHAPED:g} fps",
                f"lowest {fps:.1f} fps",
                fps >= MIN_FPS_SHAPED,
            )
        )
        verdicts.append(
            Verdict(
                label,
                f"{shaped}: <= {MAX_FREEZES_PER_MIN:g} freeze a minute per video",
                f"most {freezes:.1f} a minute",
                freezes <= MAX_FREEZES_PER_MIN,
            )
        )
    else:
        verdicts.append(Verdict(label, f"{shaped} decodes every video", "no videos", False))
    rtt = call["viewers"].get(shaped, {}).get("rtt_ms")
    rtt_target = f"{shaped}'s round trip stays under {MAX_RTT_MS:g} ms"
    if rtt:
        verdicts.append(
            Verdict(
                label,
                rtt_target,
                f"mean {rtt['mean']:g}, max {rtt['max']:g} ms",
                rtt["max"] < MAX_RTT_MS,
            )
        )
    else:
        verdicts.append(Verdict(label, rtt_target, "no round-trip samples", None))
    verdicts.append(_others_see_each_other(call))
    verdicts.append(_no_more_key_frames(call, calls))
    return verdicts


def _phase(call: dict[str, Any], label: str) -> dict[str, Any] | None:
    return next((p for p in call.get("phases", []) if p["label"] == label), None)


def _step_down(call: dict[str, Any], calls: list[dict[str, Any]]) -> list[Verdict]:
    label = call["label"]
    shaped = _shaped(call)
    verdicts = []
    down = _phase(call, "800 kbit/s")
    up = _phase(call, "5 Mbit/s again")
    before = _phase(call, "before")
    down_target = f"{shaped} settles within {STEP_DOWN_WITHIN_S:g} s of the fall to 800 kbit/s"
    if down is None:
        verdicts.append(Verdict(label, down_target, "no such phase", None))
    else:
        settled = down.get("shaped_viewer_settled_s")
        verdicts.append(
            Verdict(
                label,
                down_target,
                "never settled" if settled is None else f"settled after {settled:g} s",
                settled is not None and settled <= STEP_DOWN_WITHIN_S,
            )
        )
    up_target = (
        f"{shaped} is back at the picture it had before within {STEP_UP_WITHIN_S:g} s of the"
        " link's return"
    )
    if up is None or before is None:
        verdicts.append(Verdict(label, up_target, "no such phase", None))
    else:
        settled = up.get("shaped_viewer_settled_s")
        first = _videos_of_phase(before, shaped)
        last = _videos_of_phase(up, shaped)
        lower = [
            publisher
            for publisher, video in first.items()
            if int(last.get(publisher, {}).get("frame_height") or 0)
            < int(video.get("frame_height") or 0)
        ]
        measured = "never settled" if settled is None else f"settled after {settled:g} s"
        if lower:
            measured += f"; smaller than before: {', '.join(sorted(lower))}"
        verdicts.append(
            Verdict(
                label,
                up_target,
                measured,
                settled is not None and settled <= STEP_UP_WITHIN_S and not lower,
            )
        )
    verdicts.append(_longest_freeze(call, shaped))
    return verdicts


def _videos_of_phase(phase: dict[str, Any], viewer: str) -> dict[str, dict[str, Any]]:
    return dict(phase["viewers"].get(viewer, {}).get("videos", {}))


def _longest_freeze(call: dict[str, Any], viewer: str) -> Verdict:
    """getStats gives a video's freeze count and their total length, not each one's: the
    target is met when the total is within the bound, missed when the total exceeds the count
    times the bound (one of them must be longer), and undecided otherwise."""
    target = f"{viewer}: no freeze longer than {LONGEST_FREEZE_S:g} s"
    videos = _videos_of(call, viewer)
    if not videos:
        return Verdict(call["label"], target, "no videos", None)
    met: bool | None = True
    parts = []
    for publisher, video in sorted(videos.items()):
        count = int(video.get("freezes") or 0)
        total = float(video.get("freeze_s") or 0.0)
        parts.append(f"{publisher} {count} for {total:g} s")
        if total > count * LONGEST_FREEZE_S:
            met = False
        elif total > LONGEST_FREEZE_S and met is True:
            met = None
    return Verdict(call["label"], target, "; ".join(parts), met)


def _lossy_viewer(call: dict[str, Any], calls: list[dict[str, Any]]) -> list[Verdict]:
    shaped = _shaped(call)
    videos = _videos_of(call, shaped)
    target = f"{shaped} (3 % loss) decodes every video at >= {LOSSY_VIEWER_MIN_FPS:g} fps"
    if videos:
        fps = min(float(v.get("fps") or 0.0) for v in videos.values())
        first = Verdict(call["label"], target, f"lowest {fps:.1f} fps", fps >= LOSSY_VIEWER_MIN_FPS)
    else:
        first = Verdict(call["label"], target, "no videos", False)
    return [first, _others_see_each_other(call)]


def _slow_publisher(call: dict[str, Any], calls: list[dict[str, Any]]) -> list[Verdict]:
    """The shaped participant's uplink is slow: its viewers get its lower layers smoothly."""
    shaped = _shaped(call)
    freezes = []
    for viewer in call["viewers"]:
        video = _videos_of(call, viewer).get(shaped)
        if viewer != shaped and video is not None:
            freezes.append((viewer, int(video.get("freezes") or 0)))
    target = f"{shaped}'s viewers see it without freezes"
    if not freezes:
        return [Verdict(call["label"], target, f"nobody decoded {shaped}", False)]
    measured = ", ".join(f"{viewer} {count}" for viewer, count in freezes)
    return [
        Verdict(call["label"], target, f"freezes: {measured}", all(n == 0 for _, n in freezes)),
        _others_see_each_other(call),
    ]


_CHECKS = {
    "one-slow-viewer": _one_slow_viewer,
    "step-down": _step_down,
    "lossy-viewer": _lossy_viewer,
    "slow-publisher": _slow_publisher,
}


def render(verdicts: list[Verdict]) -> list[list[str]]:
    """Table rows: call, target, measured, met / NOT MET / can't say."""
    words = {True: "met", False: "NOT MET", None: "can't say"}
    return [[v.call, v.target, v.measured, words[v.met]] for v in verdicts]
