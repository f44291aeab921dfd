"""The network lab's verdicts against the per-viewer-quality issue's targets
(bench/netlab_targets.py), on results shaped as bench/netlab.py writes them."""

from __future__ import annotations

from typing import Any

from bench.netlab import render
from bench.netlab_targets import Verdict, evaluate

NAMES = ("alice", "bob", "carol")


def video(
    fps: float = 28.0,
    height: int = 360,
    freezes: int = 0,
    freeze_s: float = 0.0,
    window_s: float = 45.0,
) -> dict[str, Any]:
    return {
        "frame_width": height * 16 // 9,
        "frame_height": height,
        "min_frame_height": height,
        "fps": fps,
        "freezes": freezes,
        "freeze_s": freeze_s,
        "freezes_per_min": round(60 * freezes / window_s, 2),
        "packets_lost": 0,
        "loss_pct": 0.0,
        "nacks": 0,
        "plis": 0,
        "kbps": 500.0,
    }


def encoding(key_frames: int) -> dict[str, Any]:
    return {
        "active": True,
        "frame_width": 640,
        "frame_height": 360,
        "fps": 28.0,
        "kbps": 500.0,
        "key_frames": key_frames,
        "quality_limitation": "none",
        "quality_limitation_share": {},
    }


def viewer(videos: dict[str, dict[str, Any]], rtt_max: float = 40.0) -> dict[str, Any]:
    return {
        "videos": videos,
        "rtt_ms": {"mean": rtt_max / 2, "min": 1.0, "max": rtt_max, "last": rtt_max / 2},
        "indicator": {},
    }


def call(
    label: str,
    viewers: dict[str, dict[str, Any]] | None = None,
    key_frames: int = 3,
    phases: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    everyone_sees_everyone = {
        name: viewer({other: video() for other in NAMES if other != name}) for name in NAMES
    }
    result: dict[str, Any] = {
        "label": label,
        "participants": [{"name": name, "link": "unshaped"} for name in NAMES],
        "viewers": {**everyone_sees_everyone, **(viewers or {})},
        "publishers": {
            name: {"encodings": {"f": encoding(key_frames), "q": encoding(0)}} for name in NAMES
        },
        "sfu": {},
        "load": {"loadavg": [1.0], "machine_busy_pct": 50.0, "processes_pct_of_core": {}},
        "links": {},
    }
    if phases is not None:
        result["phases"] = phases
    return result


def verdicts_of(calls: list[dict[str, Any]]) -> dict[str, dict[str, Verdict]]:
    """By call label, then by the target's first words (enough to tell them apart)."""
    found: dict[str, dict[str, Verdict]] = {}
    for verdict in evaluate({"calls": calls}):
        found.setdefault(verdict.call, {})[verdict.target] = verdict
    return found


def by_prefix(verdicts: dict[str, Verdict], prefix: str) -> Verdict:
    (match,) = [v for target, v in verdicts.items() if target.startswith(prefix)]
    return match


def test_a_slow_viewer_that_keeps_up_meets_every_target_and_one_that_freezes_does_not() -> None:
    good = call(
        "one-slow-viewer on",
        {"carol": viewer({"alice": video(fps=18), "bob": video(fps=17, height=180)}, 120)},
    )
    bad = call(
        "one-slow-viewer off",
        {
            "carol": viewer(
                {"alice": video(fps=9, freezes=12, freeze_s=20), "bob": video(fps=17)}, 454
            ),
            "alice": viewer({"bob": video(fps=22, height=180), "carol": video()}),
        },
        key_frames=9,
    )
    baselines = [call("unshaped on"), call("unshaped off")]
    found = verdicts_of([*baselines, good, bad])

    on = found["one-slow-viewer on"]
    assert all(v.met is True for v in on.values()), on
    assert by_prefix(on, "carol keeps").measured == "lowest 17.0 fps"

    off = found["one-slow-viewer off"]
    assert by_prefix(off, "carol keeps").met is False
    assert by_prefix(off, "carol: <= 1 freeze").met is False
    assert by_prefix(off, "carol's round trip").met is False
    others = by_prefix(off, "the others")
    assert (others.met, others.measured) == (False, "lowest 180p, lowest 22.0 fps")
    key_frames = by_prefix(off, "no more key frames")
    assert (key_frames.met, key_frames.measured) == (False, "27 key frames, unshaped 9")


def test_without_an_unshaped_call_the_key_frame_target_cannot_be_judged() -> None:
    found = verdicts_of([call("one-slow-viewer on")])
    assert by_prefix(found["one-slow-viewer on"], "no more key frames").met is None
    # The unshaped call itself has no targets of its own, and a failed call is skipped.
    assert verdicts_of([call("unshaped on"), {"label": "step-down on", "error": "x"}]) == {}


def phase(label: str, carol: dict[str, Any], settled: float | None) -> dict[str, Any]:
    return {
        "label": label,
        "from_s": 0.0,
        "viewers": {"carol": viewer(carol)},
        "shaped_viewer_settled_s": settled,
    }


def test_a_step_down_is_judged_on_how_fast_the_viewer_settles_and_whether_it_comes_back() -> None:
    at_360 = {"alice": video(height=360), "bob": video(height=360)}
    at_180 = {"alice": video(height=180), "bob": video(height=180)}
    quick = call(
        "step-down on",
        {"carol": viewer({"alice": video(freezes=2, freeze_s=0.8), "bob": video()})},
        phases=[
            phase("before", at_360, 2.0),
            phase("800 kbit/s", at_180, 1.0),
            phase("5 Mbit/s again", at_360, 8.0),
        ],
    )
    stuck = call(
        "step-down off",
        {"carol": viewer({"alice": video(freezes=2, freeze_s=1.6), "bob": video()})},
        phases=[
            phase("before", at_360, 2.0),
            phase("800 kbit/s", at_180, 4.5),
            phase("5 Mbit/s again", at_180, 2.0),
        ],
    )
    long_freeze = call(
        "step-down on",
        {"carol": viewer({"alice": video(freezes=1, freeze_s=2.5), "bob": video()})},
        phases=[],
    )
    found = verdicts_of([quick, stuck])
    assert all(v.met is True for v in found["step-down on"].values()), found["step-down on"]

    off = found["step-down off"]
    assert by_prefix(off, "carol settles").met is False
    back = by_prefix(off, "carol is back")
    assert back.met is False
    assert back.measured == "settled after 2 s; smaller than before: alice, bob"
    # Two freezes for 1.6 s in all: each may have been under a second, or one over.
    assert by_prefix(off, "carol: no freeze").met is None

    (single,) = verdicts_of([long_freeze]).values()
    assert by_prefix(single, "carol: no freeze").met is False  # one freeze, 2.5 s
    assert by_prefix(single, "carol settles").met is None  # no phases recorded


def test_a_lossy_viewer_and_a_slow_publisher_are_judged_on_their_own_terms() -> None:
    lossy = call("lossy-viewer on", {"carol": viewer({"alice": video(fps=26), "bob": video(20)})})
    slow = call(
        "slow-publisher on",
        {
            "alice": viewer({"bob": video(), "carol": video(height=180, freezes=0)}),
            "bob": viewer({"alice": video(), "carol": video(height=180, freezes=3)}),
        },
    )
    found = verdicts_of([lossy, slow])
    assert by_prefix(found["lossy-viewer on"], "carol (3 % loss)").met is False
    assert by_prefix(found["lossy-viewer on"], "the others").met is True
    publisher = by_prefix(found["slow-publisher on"], "carol's viewers")
    assert (publisher.met, publisher.measured) == (False, "freezes: alice 0, bob 3")


def test_the_lab_prints_the_verdicts_beside_its_tables() -> None:
    results = {"calls": [call("unshaped on"), call("one-slow-viewer on")]}
    table = render(results)
    assert "Targets" in table
    assert (
        "| one-slow-viewer on | carol keeps every video at >= 15 fps | lowest 28.0 fps | met |"
        in (table)
    )
