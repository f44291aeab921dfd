"""Join benchmark: time from pressing "Join now" to the first decoded remote frame, and the
signaling round trip through the SFU node.

    .venv/bin/python bench/join.py [--joins 8] [--reconnects 5] [--round-trips 200]

Starts what a deployment runs (daphne, one SFU node, an embedded Redis unless REDIS_URL is
set) against a fresh SQLite database under var/, and drives real Chromium with fake camera and
microphone, all on 127.0.0.1. One resident participant stays in the meeting; each measured
joiner opens the meeting link, waits for its pre-join preview, presses "Join now", and the page
records performance marks "meet:join-click" and "meet:first-remote-frame" (the first remote
video frame presented, via requestVideoFrameCallback). A participant whose WebSocket is then
cut at both ends gives the recovery time (page's "meet:ws-lost" to the first frame on its new
receive connection). Baselines measured in the same run:
- join: two RTCPeerConnections in one page connected directly over loopback (offer with ICE
  gathered, answer, first frame decoded): the floor any WebRTC join pays without a server;
- round trip: a request the signaling consumer answers itself (an unknown method gets an
  immediate error) against getStats, which goes through the channel layer to the SFU node.
Prints a table and writes JSON to bench/results/join-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"

DIRECT_LOOPBACK_JS = """
async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}});
  const gathered = (pc) => pc.iceGatheringState === "complete" ? Promise.resolve()
    : new Promise((r) => pc.addEventListener("icegatheringstatechange",
        () => pc.iceGatheringState === "complete" && r()));
  const start = performance.now();
  const sender = new RTCPeerConnection({iceServers: []});
  const receiver = new RTCPeerConnection({iceServers: []});
  sender.addTransceiver(stream.getVideoTracks()[0], {direction: "sendonly"});
  const firstFrame = new Promise((resolve) => {
    receiver.ontrack = (event) => {
      const video = document.createElement("video");
      video.muted = true; video.autoplay = true; video.playsInline = true;
      video.srcObject = new MediaStream([event.track]);
      document.body.append(video);
      video.requestVideoFrameCallback(() => resolve(performance.now()));
    };
  });
  await sender.setLocalDescription(await sender.createOffer());
  await gathered(sender);
  await receiver.setRemoteDescription(sender.localDescription);
  await receiver.setLocalDescription(await receiver.createAnswer());
  await gathered(receiver);
  await sender.setRemoteDescription(receiver.localDescription);
  const end = await firstFrame;
  sender.close(); receiver.close(); stream.getTracks().forEach((t) => t.stop());
  document.querySelectorAll("video").forEach((v) => v.remove());
  return end - start;
}
"""

FRAME_MARKS_AT_LEAST_JS = (
    "(n) => performance.getEntriesByName('meet:first-remote-frame').length >= n"
)
RECOVERY_JS = """
() => performance.getEntriesByName("meet:first-remote-frame").at(-1).startTime
  - performance.getEntriesByName("meet:ws-lost").at(-1).startTime
"""

# Paced below the consumer's request rate limit (SIGNALING_RATE_PER_SECOND, 30/s by default)
# so the figure is the round trip, not the limiter.
# Milliseconds from "Join now" to each mark the client sets on the way to the first frame.
MARKS_JS = """
() => {
  const click = performance.getEntriesByName("meet:join-click")[0].startTime;
  const result = {};
  for (const name of ["meet:ws-open", "meet:joined", "meet:first-answer", "meet:published",
                      "meet:first-remote-frame"]) {
    const entry = performance.getEntriesByName(name)[0];
    if (entry) result[name] = entry.startTime - click;
  }
  return result;
}
"""

ROUND_TRIPS_JS = """
async ([method, count]) => {
  const signaling = window.meetCall.signaling;
  const samples = [];
  const spacingMs = 50;
  for (let i = 0; i < count; i += 1) {
    if (i > 0) await new Promise((r) => setTimeout(r, Math.max(0, spacingMs - samples[i - 1])));
    const start = performance.now();
    try { await signaling.request(method, {}); } catch (error) {
      if (method === "getStats") throw error;  // the SFU path must answer
    }
    samples.push(performance.now() - start);
  }
  return samples;
}
"""


def poll_page(page: Any, js: str, arg: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(js, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {js} ({arg})")
        time.sleep(0.02)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.5), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
        "mean_ms": round(statistics.fmean(samples), 2),
    }


def prepare_environment() -> tuple[object | None, Path]:
    """Own database and channel-layer prefix for this run; embedded Redis unless REDIS_URL."""
    var = REPO / "var"
    var.mkdir(exist_ok=True)
    run_id = f"bench-join-{os.getpid()}"
    db_path = var / f"{run_id}.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["CHANNEL_LAYER_PREFIX"] = f"meet-{run_id}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
    os.environ["SFU_LISTEN_IPS"] = "127.0.0.1"
    os.environ["SFU_ICE_SERVERS"] = ""
    # Playwright's sync API keeps an asyncio loop running in this thread; the ORM calls here are
    # plain blocking ones (the children do not inherit this: see child_env).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    embedded = None
    if not os.environ.get("REDIS_URL"):
        from meet import embedded_redis

        socket_path = var / f"{run_id}-redis.sock"
        embedded = (embedded_redis.start(socket_path), socket_path)
        os.environ["REDIS_URL"] = f"unix://{socket_path}"
    return embedded, db_path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--joins", type=int, default=8, help="measured joins (default 8)")
    parser.add_argument(
        "--reconnects", type=int, default=5, help="dropped WebSockets to recover (default 5)"
    )
    parser.add_argument(
        "--round-trips", type=int, default=200, help="signaling requests per method"
    )
    args = parser.parse_args()

    embedded, db_path = prepare_environment()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from playwright.sync_api import expect, sync_playwright

    from accounts.models import User
    from sfu import registry
    from tests.e2e.netns import LoopbackNamespace
    from tests.e2e.stack import (
        LOG_DIR,
        Daphne,
        SfuNodeProcess,
        child_env,
        create_meeting,
        launch_chromium,
        no_wrap,
        session_cookie,
    )

    call_command("migrate", verbosity=0)
    env = child_env(os.environ["DATABASE_URL"])
    # Loopback only: browser, daphne and SFU share a namespace whose only interface is lo.
    namespace = LoopbackNamespace.create()
    if namespace is None:
        print("warning: no loopback-only network namespace (needs root); using the host network")
    else:
        namespace.bridge_services(os.environ["REDIS_URL"])
    wrap = namespace.wrap if namespace else no_wrap
    node = SfuNodeProcess(
        env, LOG_DIR / "bench-join-sfu.log", node_name=f"bench-{os.getpid()}", wrap=wrap
    )
    daphne = Daphne(env, LOG_DIR / "bench-join-daphne.log", wrap=wrap)
    results: dict[str, object] = {}
    try:
        node.start(is_live=lambda name: registry.live_nodes().filter(name=name).exists())
        daphne.start()
        host = User.objects.create_user(
            f"host-{uuid.uuid4().hex[:8]}@example.org", first_name="Host"
        )
        meeting_path = create_meeting(host)
        url = f"{daphne.base_url}{meeting_path}"

        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, namespace)

            def context_for(user: User):
                context = browser.new_context(viewport={"width": 1280, "height": 720})
                context.add_cookies([session_cookie(user, daphne.base_url)])
                return context

            def join(page, name: str) -> None:
                page.goto(url)
                expect(page.get_by_role("button", name="Join now", exact=True)).to_be_enabled(
                    timeout=30_000
                )
                # The pre-join preview is running, as when a person presses the button.
                page.wait_for_function(
                    "document.querySelector('#preview-video').videoWidth > 0", timeout=30_000
                )
                field = page.get_by_label("Your name")
                if field.is_editable():  # signed in: the account's name, not typed
                    field.fill(name)
                page.get_by_role("button", name="Join now", exact=True).click()

            resident_context = context_for(host)
            resident = resident_context.new_page()
            join(resident, "Resident")
            expect(resident.get_by_role("button", name="Leave call", exact=True)).to_be_visible(
                timeout=30_000
            )

            join_ms: list[float] = []
            phases: dict[str, list[float]] = {}
            for index in range(args.joins):
                user = User.objects.create_user(
                    f"joiner-{index}-{uuid.uuid4().hex[:6]}@example.org"
                )
                context = context_for(user)
                page = context.new_page()
                join(page, f"Joiner {index}")
                page.wait_for_function(
                    "performance.getEntriesByName('meet:first-remote-frame').length > 0",
                    timeout=30_000,
                )
                marks = page.evaluate(MARKS_JS)
                join_ms.append(marks["meet:first-remote-frame"])
                for phase, at in marks.items():
                    phases.setdefault(phase, []).append(at)
                page.get_by_role("button", name="Leave call", exact=True).click()
                expect(page.get_by_role("heading", name="You left the meeting")).to_be_visible()
                context.close()

            # Recovery: a participant whose WebSocket is cut at both ends (as by a server
            # restart) reconnects, joins again and republishes; time from the drop (the page's
            # "meet:ws-lost") to the first remote frame on its new receive connection.
            recover_ms: list[float] = []
            routes: list[tuple[Any, Any]] = []
            user = User.objects.create_user(f"reconnector-{uuid.uuid4().hex[:6]}@example.org")
            context = context_for(user)

            def route(page_side: Any) -> None:
                routes.append((page_side, page_side.connect_to_server()))

            context.route_web_socket(re.compile(r"/ws/rooms/"), route)
            page = context.new_page()
            join(page, "Reconnector")
            # Short calls only, never a long wait: the route handler for each new socket
            # makes Playwright calls of its own, which cannot run inside a long wait.
            poll_page(page, FRAME_MARKS_AT_LEAST_JS, 1)
            for attempt in range(args.reconnects):
                page_side, server_side = routes[-1]
                server_side.close(code=1001, reason="going away")
                page_side.close(code=1012, reason="service restart")
                poll_page(page, FRAME_MARKS_AT_LEAST_JS, attempt + 2)
                recover_ms.append(page.evaluate(RECOVERY_JS))
            context.close()

            baseline_page = context_for(host).new_page()
            baseline_page.goto(f"{daphne.base_url}/healthz")
            direct_ms = [baseline_page.evaluate(DIRECT_LOOPBACK_JS) for _ in range(args.joins)]

            resident.evaluate(ROUND_TRIPS_JS, ["getStats", 20])  # warm-up
            sfu_rtt = resident.evaluate(ROUND_TRIPS_JS, ["getStats", args.round_trips])
            consumer_rtt = resident.evaluate(
                ROUND_TRIPS_JS, ["benchUnknownMethod", args.round_trips]
            )
            browser.close()

        results = {
            "benchmark": "join",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "network": "loopback-only namespace" if namespace else "host (loopback addresses)",
            "join_to_first_remote_frame": summary(join_ms),
            "baseline_direct_loopback_first_frame": summary(direct_ms),
            "join_ratio_to_baseline_p50": round(
                percentile(join_ms, 0.5) / percentile(direct_ms, 0.5), 2
            ),
            "websocket_drop_to_first_frame_again": summary(recover_ms),
            "signaling_round_trip_via_sfu": summary(sfu_rtt),
            "baseline_signaling_round_trip_consumer_only": summary(consumer_rtt),
            "signaling_ratio_to_baseline_p50": round(
                percentile(sfu_rtt, 0.5) / percentile(consumer_rtt, 0.5), 2
            ),
            "join_phases_p50_ms": {
                phase.removeprefix("meet:"): round(percentile(at, 0.5), 1)
                for phase, at in phases.items()
            },
            "samples": {"join_ms": join_ms, "direct_ms": direct_ms, "recover_ms": recover_ms},
        }
    finally:
        daphne.stop()
        node.stop()
        if namespace is not None:
            namespace.close()
        if embedded is not None:
            from meet import embedded_redis

            embedded_redis.stop(*embedded)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)

    rows = [
        ("join → first remote frame", results["join_to_first_remote_frame"]),
        ("  baseline: direct loopback PC", results["baseline_direct_loopback_first_frame"]),
        ("WebSocket drop → frames again", results["websocket_drop_to_first_frame_again"]),
        ("signaling RTT via SFU (getStats)", results["signaling_round_trip_via_sfu"]),
        ("  baseline: consumer only", results["baseline_signaling_round_trip_consumer_only"]),
    ]
    print(f"{'measure':36} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'min ms':>9} {'max ms':>9}")
    for label, row in rows:
        assert isinstance(row, dict)
        print(
            f"{label:36} {row['n']:>4} {row['p50_ms']:>9.1f} {row['p99_ms']:>9.1f}"
            f" {row['min_ms']:>9.1f} {row['max_ms']:>9.1f}"
        )
    print(
        "join phases, p50 ms after the click: "
        + ", ".join(f"{k} {v}" for k, v in results["join_phases_p50_ms"].items())
    )
    print(
        f"join p50 / baseline p50: {results['join_ratio_to_baseline_p50']}x;"
        f" signaling p50 / baseline p50: {results['signaling_ratio_to_baseline_p50']}x"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"join-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
