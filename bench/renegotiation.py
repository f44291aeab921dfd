"""Renegotiation benchmark: how a viewer's renegotiation grows with the meeting, today's model
being one receive m-line per remote producer (issue 14 asks whether that holds at 50+).

    .venv/bin/python bench/renegotiation.py [--publishers 60] [--viewer aiortc]

One SFU node (`manage.py runsfu`, its own process, as deployed) behind the real channel layer
(an embedded Redis on a unix socket unless REDIS_URL is set; a throwaway SQLite database), one
viewer (an aiortc peer connection
that answers every offer the node makes, as the browser client does) and N publishers joining
one after another, each publishing a camera and a microphone whose tracks never yield a frame:
their m-lines are negotiated and their transports connect, but nothing is encoded or sent, so
what is measured is negotiation alone. For each publisher:

- offer: from the `produce` request until the viewer has the node's offer that adds that
  publisher's two m-lines (the node answering the publisher, creating the viewer's offer, its
  trip through Redis);
- viewer: the viewer's setRemoteDescription + createAnswer + setLocalDescription;
- answer: the answer's trip to the node and the node's setRemoteDescription (the reply);
- total (from the `produce` request), the offer's size and m-line count.

The baseline, in the same run, is the first publisher's renegotiation (two m-lines): the table
gives each step's total as a ratio to it.

Then Chromium (Debian's, through Playwright, in a network namespace of its own with only a
loopback interface: nothing it tries reaches anything) replays the same offers in order on one
RTCPeerConnection, as the browser client would have received them: its setRemoteDescription,
createAnswer and setLocalDescription per offer, and its answer's size (`--no-chromium` skips
it). The node offers candidates on 127.0.0.1 only. The node's own slow garbage collections
(sfu/collection_watch.py: 100 ms or more with its event loop held) are read from its log.

Prints a table and writes JSON to bench/results/renegotiation-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
REPORT_AT = (1, 2, 5, 10, 20, 30, 40, 50, 60, 80, 100)

REPLAY_JS = """
async (offers) => {
  const pc = new RTCPeerConnection({iceServers: []});
  const rows = [];
  for (const sdp of offers) {
    const started = performance.now();
    await pc.setRemoteDescription({type: "offer", sdp});
    const remote = performance.now();
    const answer = await pc.createAnswer();
    const created = performance.now();
    await pc.setLocalDescription(answer);
    const local = performance.now();
    rows.push({
      set_remote_ms: remote - started,
      create_answer_ms: created - remote,
      set_local_ms: local - created,
      answer_bytes: pc.localDescription.sdp.length,
    });
  }
  pc.close();
  return rows;
}
"""


def prepare_environment(work: Path) -> Any:
    os.environ["DATABASE_URL"] = f"sqlite:///{work / 'db.sqlite3'}"
    os.environ["CHANNEL_LAYER_PREFIX"] = f"meet-renegotiation-{os.getpid()}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
    os.environ["SFU_LISTEN_IPS"] = "127.0.0.1"
    embedded = None
    if not os.environ.get("REDIS_URL"):
        from meet import embedded_redis

        socket_path = work / "redis.sock"
        embedded = (embedded_redis.start(socket_path), socket_path)
        os.environ["REDIS_URL"] = f"unix://{socket_path}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return embedded


async def run(publishers: int, node_name: str) -> tuple[list[dict[str, Any]], list[str]]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamTrack
    from channels.layers import get_channel_layer

    from sfu import client, registry

    class Silent(MediaStreamTrack):
        """A track whose sender waits forever for its first frame: an m-line, no media."""

        def __init__(self, kind: str) -> None:
            super().__init__()
            self.kind = kind

        async def recv(self) -> NoReturn:  # type: ignore[override]
            while True:
                await asyncio.Event().wait()

    node_channel = registry.channel_for(node_name)
    room = f"room-{uuid.uuid4().hex[:6]}"
    layer = get_channel_layer()
    viewer_id = "viewer"
    viewer_channel = f"bench-viewer.{uuid.uuid4().hex}"
    viewer_client = client.NodeClient(node_channel, room)
    viewer_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    offers: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
    pcs: list[Any] = []
    rows: list[dict[str, Any]] = []
    offers_applied: list[str] = []  # every offer the viewer applied, in order

    async def viewer_events() -> None:
        while True:
            message = await layer.receive(viewer_channel)
            if message["event"] == "negotiate":
                offers.put_nowait((time.perf_counter(), message["data"]))

    events = asyncio.create_task(viewer_events())
    try:
        await viewer_client.join(viewer_id, viewer_channel, "Viewer")
        for index in range(1, publishers + 1):
            publisher_id = f"publisher-{index}"
            publisher = client.NodeClient(node_channel, room)
            await publisher.join(publisher_id, f"bench-pub.{uuid.uuid4().hex}", publisher_id)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pcs.append(pc)
            camera = pc.addTransceiver(Silent("video"), direction="sendonly")
            mic = pc.addTransceiver(Silent("audio"), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            sources = {camera.mid: "camera", mic.mid: "mic"}
            produced = time.perf_counter()
            reply = await publisher.produce(publisher_id, pc.localDescription.sdp, sources)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
            new = {p["producer_id"] for p in reply["producers"]}
            # The offers up to the one that adds this publisher's m-lines (the node batches).
            viewer_s = answer_s = 0.0
            while True:
                arrived, offer = await asyncio.wait_for(offers.get(), 60)
                started = time.perf_counter()
                offers_applied.append(offer["sdp"])
                await viewer_pc.setRemoteDescription(
                    RTCSessionDescription(sdp=offer["sdp"], type="offer")
                )
                await viewer_pc.setLocalDescription(await viewer_pc.createAnswer())
                answered = time.perf_counter()
                await viewer_client.receive_answer(
                    viewer_id, offer["negotiation_id"], viewer_pc.localDescription.sdp
                )
                done = time.perf_counter()
                viewer_s += answered - started
                answer_s += done - answered
                consumed = {c["producer_id"] for c in offer["consumers"]}
                if new <= consumed:
                    break
            sdp = offer["sdp"]
            rows.append(
                {
                    "publishers": index,
                    "m_lines": sdp.count("\r\nm="),
                    "offer_bytes": len(sdp),
                    "offer_ms": round(1000 * (arrived - produced), 1),
                    "viewer_ms": round(1000 * viewer_s, 1),
                    "answer_ms": round(1000 * answer_s, 1),
                    "total_ms": round(1000 * (done - produced), 1),
                    "offers_applied": len(offers_applied),
                }
            )
            print(_row(rows[-1], rows[0]), flush=True)
    finally:
        events.cancel()
        for pc in [*pcs, viewer_pc]:
            await pc.close()
    return rows, offers_applied


def slow_collections(log: str) -> list[float]:
    """The node's collections that held its loop long (ms), from its log."""
    found = re.findall(r"garbage collection \(generation \d\) held the event loop (\d+) ms", log)
    return [float(ms) for ms in found]


def replay_in_chromium(rows: list[dict[str, Any]], offers: list[str]) -> str | None:
    """Chromium's cost of the same offers, in order, on one connection: added to each row
    (the offer that completed that publisher's round). Returns why not, where it cannot."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.netns import LoopbackNamespace
    from tests.e2e.stack import CHROMIUM, launch_chromium

    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (scripts/ensure-chromium.sh)"
    namespace = LoopbackNamespace.create()
    if namespace is None:
        return "no loopback-only network namespace here (needs root, unshare, nsenter)"
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, namespace)
            try:
                page = browser.new_page()
                page.goto("about:blank")
                timings = page.evaluate(REPLAY_JS, offers)
            finally:
                browser.close()
    finally:
        namespace.close()
    for row in rows:
        step = timings[row["offers_applied"] - 1]
        row["chromium_ms"] = round(
            step["set_remote_ms"] + step["create_answer_ms"] + step["set_local_ms"], 1
        )
        row["chromium_set_remote_ms"] = round(step["set_remote_ms"], 1)
        row["chromium_answer_bytes"] = step["answer_bytes"]
    return None


HEADER = (
    "publishers  m-lines  offer KB  offer ms  viewer ms  answer ms  total ms  ÷ first"
    "  Chromium ms  its answer KB"
)


def _row(row: dict[str, Any], first: dict[str, Any]) -> str:
    ratio = row["total_ms"] / first["total_ms"] if first["total_ms"] else float("nan")
    return (
        f"{row['publishers']:>10}  {row['m_lines']:>7}  {row['offer_bytes'] / 1024:>8.1f}"
        f"  {row['offer_ms']:>8.1f}  {row['viewer_ms']:>9.1f}  {row['answer_ms']:>9.1f}"
        f"  {row['total_ms']:>8.1f}  {ratio:>7.1f}"
        + (
            f"  {row['chromium_ms']:>11.1f}  {row['chromium_answer_bytes'] / 1024:>13.1f}"
            if "chromium_ms" in row
            else ""
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishers", type=int, default=60)
    parser.add_argument("--no-chromium", action="store_true", help="skip the Chromium replay")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="meet-renegotiation-"))
    embedded = prepare_environment(work)
    started = datetime.now(UTC)
    try:
        from sfu import registry
        from tests.e2e.stack import SfuNodeProcess, child_env

        node_name = f"renegotiation-{uuid.uuid4().hex[:6]}"
        node_log = work / "sfu.log"
        node = SfuNodeProcess(child_env(os.environ["DATABASE_URL"]), node_log, node_name)
        node.start(is_live=lambda name: registry.live_nodes().filter(name=name).exists())
        try:
            print(HEADER, flush=True)
            rows, offers = asyncio.run(run(args.publishers, node_name))
        finally:
            node.stop()
        collections = slow_collections(node_log.read_text(errors="replace"))
        chromium = None if args.no_chromium else replay_in_chromium(rows, offers)
    finally:
        if embedded is not None:
            from meet import embedded_redis

            embedded_redis.stop(*embedded)
        shutil.rmtree(work, ignore_errors=True)
    if args.no_chromium:
        chromium = "skipped (--no-chromium)"
    if chromium:
        print(f"\nChromium: {chromium}")
    print(
        f"\nThe node's collections that held its loop >= 100 ms: {len(collections)}"
        + (f", longest {max(collections):.0f} ms" if collections else "")
    )
    print("\nAt the reported sizes:")
    print(HEADER)
    for row in rows:
        if row["publishers"] in REPORT_AT or row is rows[-1]:
            print(_row(row, rows[0]))
    results = {
        "benchmark": "renegotiation",
        "when": started.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "viewer": "aiortc",
        "node_slow_collections_ms": collections,
        "chromium": chromium or "replayed the offers in order on one connection",
        "baseline": "the first publisher's renegotiation (two m-lines), same run",
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"renegotiation-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
