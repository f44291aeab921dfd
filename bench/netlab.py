"""The network lab: a real call between real Chromium processes over shaped links, measured
from the browsers' getStats and the SFU node's stats (issue 13).

    make netlab SCENARIO=one-slow-viewer
    .venv/bin/python bench/netlab.py --scenario NAME [--participants 3] [--duration S]
        [--settle S] [--interval S] [--variants on,off] [--no-baseline] [--queue-ms 80]

Needs root (network namespaces, tc) and Debian's Chromium. docs/netlab.md says what it
measures and how to read the table.

- **Server namespace**: daphne (0.0.0.0:8000) and one SFU node (`manage.py runsfu`), the SFU
  gathering ICE candidates on 198.18.0.1 only (SFU_LISTEN_IPS), no ICE servers. SQLite file
  and an embedded Redis on a unix socket (reachable from every namespace: only the network is
  separate), as bench/join.py.
- **One namespace per participant**, one Chromium process each (fake camera and microphone),
  at 198.18.0.11, .12, ..., linked to the server's bridge by a veth pair; a shaped link goes
  through a link namespace with a tbf rate limit + queue per direction and a user-space delay
  line (bench/netlab_net.py, bench/netlab_wire.py: this kernel has no netem).
- **Each scenario twice**, with the feature switch `SFU_SIMULCAST=1` (on) and `=0` (off) given
  to daphne and the SFU node, and, unless --no-baseline, the unshaped call on and off as the
  baseline, all in the same run.
- **The window**: once every participant decodes video from every other one, wait --settle s,
  then sample every --interval s for --duration s: each page's getStats (pc_recorder.js),
  the node's getStats for every peer, the tbf and wire counters; CPU of every Chromium (all the
  processes in its namespace), the SFU node, daphne and the wires, the load average and how
  busy the machine was.

Prints tables and writes JSON to bench/results/netlab-<scenario>-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
PORT = 8000
FAKE_DEVICE = "--use-fake-device-for-media-stream"
NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]

from bench import netlab_targets  # noqa: E402
from bench.netlab_net import (  # noqa: E402
    SERVER_IP,
    CpuMeter,
    Direction,
    Lab,
    Link,
    LinkShape,
    Namespace,
)
from bench.netlab_stats import (  # noqa: E402
    ALL_SEE_ALL_JS,
    SNAPSHOT_JS,
    receive_pair,
    remote_videos,
    summarize_publisher,
    summarize_sfu,
    summarize_viewer,
)


# --- scenarios ------------------------------------------------------------------------------
@dataclass
class Step:
    """A rate change on the shaped participant's link at a fraction of the window."""

    at_fraction: float
    direction: str
    rate_kbit: int | None
    label: str


@dataclass
class Scenario:
    name: str
    summary: str
    shaped: LinkShape | None = None  # the last participant's link; the others unshaped
    steps: list[Step] = field(default_factory=list)
    default_duration: float = 30.0
    default_interval: float = 2.0

    def shape_for(self, index: int, count: int, queue_ms: float) -> LinkShape:
        if self.shaped is None or index != count:
            return LinkShape(queue_ms=queue_ms)
        shape = LinkShape(
            down=Direction(**vars(self.shaped.down)),
            up=Direction(**vars(self.shaped.up)),
            queue_ms=queue_ms,
        )
        return shape


def _home(down_kbit: int | None = None, up_kbit: int | None = None, loss: float = 0.0) -> LinkShape:
    return LinkShape(
        down=Direction(rate_kbit=down_kbit, delay_ms=25, loss=loss),
        up=Direction(rate_kbit=up_kbit, delay_ms=25),
    )


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("unshaped", "every link unshaped (the baseline)"),
        Scenario(
            "one-slow-viewer",
            "the last participant's downlink 800 kbit/s, 25 ms each way",
            _home(down_kbit=800),
        ),
        Scenario(
            "step-down",
            "the last participant's downlink 5 Mbit/s -> 800 kbit/s -> 5 Mbit/s "
            "(thirds of the window), 25 ms each way",
            _home(down_kbit=5000),
            steps=[
                Step(1 / 3, "down", 800, "800 kbit/s"),
                Step(2 / 3, "down", 5000, "5 Mbit/s again"),
            ],
            default_duration=45.0,
            default_interval=1.0,
        ),
        Scenario(
            "lossy-viewer",
            "3 % random loss on the last participant's downlink, 25 ms each way",
            _home(loss=0.03),
        ),
        Scenario(
            "slow-publisher",
            "the last participant's uplink 600 kbit/s, 25 ms each way",
            _home(up_kbit=600),
        ),
    ]
}


# --- the run --------------------------------------------------------------------------------
class AsyncThread:
    """An event loop in a thread of its own for the SFU requests: Playwright's sync API keeps a
    loop running in the main thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def prepare_environment(work: Path) -> tuple[tuple[Any, Path] | None, Path]:
    """Own database and channel-layer prefix; embedded Redis on a unix socket (reachable from
    every namespace) unless REDIS_URL is set."""
    run_id = f"netlab-{os.getpid()}"
    db_path = work / "db.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["CHANNEL_LAYER_PREFIX"] = f"meet-{run_id}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop; plain ORM calls
    embedded = None
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        from meet import embedded_redis

        socket_path = work / "redis.sock"
        embedded = (embedded_redis.start(socket_path), socket_path)
        os.environ["REDIS_URL"] = f"unix://{socket_path}"
    elif not redis_url.startswith("unix://"):
        raise SystemExit("REDIS_URL must be a unix socket (the server runs in a namespace)")
    return embedded, db_path


def chromium_args(base_url: str) -> list[str]:
    from tests.e2e.stack import CHROMIUM_ARGS

    args = [
        # Chromium's fake camera runs at 20 fps unless told otherwise: the issue's
        # ">= 25 fps" could never be met.
        "--use-fake-device-for-media-stream=fps=30" if a == FAKE_DEVICE else a
        for a in CHROMIUM_ARGS
        if a != "--allow-loopback-in-peer-connection"  # media on 198.18.0.x, not loopback
    ]
    return [
        *args,
        # Real host candidates (198.18.0.x), never mDNS names the SFU would have to resolve.
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        # getUserMedia needs a secure context; the lab serves plain http on 198.18.0.1.
        f"--unsafely-treat-insecure-origin-as-secure={base_url}",
        # One page per browser; never throttle it.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
    ]


@dataclass
class Call:
    """One call: a scenario with the feature on or off."""

    scenario: Scenario
    simulcast: bool
    count: int
    duration: float
    settle: float
    interval: float
    queue_ms: float
    seed: int | None
    work: Path
    # The per-viewer downlink estimate (SFU_DOWNLINK_ESTIMATE); --feature downlink turns it
    # off in the "off" calls, where simulcast stays on.
    downlink: bool = True
    feature: str = "simulcast"
    traces: Path | None = None  # where the node writes each viewer's downlink trace

    @property
    def label(self) -> str:
        on = self.simulcast and self.downlink
        return f"{self.scenario.name} {'on' if on else 'off'}"


def run_call(call: Call, playwright: Any, sfu: AsyncThread, serial: int) -> dict[str, Any]:
    from playwright.sync_api import expect

    from accounts.models import User
    from sfu import registry
    from sfu.client import NodeClient, dump
    from tests.e2e.call_page import Participant, poll
    from tests.e2e.stack import (
        CHROMIUM,
        LOG_DIR,
        VENV_BIN,
        ManagedProcess,
        SfuNodeProcess,
        child_env,
        create_meeting,
        session_cookie,
        wait_until,
    )

    recorder = (REPO / "tests" / "e2e" / "pc_recorder.js").read_text()
    wrapper = REPO / "tests" / "e2e" / "chromium-in-netns.sh"
    base_url = f"http://{SERVER_IP}:{PORT}"
    tag = f"netlab-{os.getpid()}-{serial}"
    lab = Lab(call.work / f"call-{serial}", seed=call.seed)
    lab.work_dir.mkdir(parents=True, exist_ok=True)
    if call.traces:
        call.traces.mkdir(parents=True, exist_ok=True)
    env = child_env(
        os.environ["DATABASE_URL"],
        SFU_LISTEN_IPS=SERVER_IP,
        SFU_ICE_SERVERS="",
        SFU_SIMULCAST="1" if call.simulcast else "0",
        SFU_DOWNLINK_ESTIMATE="1" if call.downlink else "0",
        **({"SFU_DOWNLINK_TRACE_DIR": str(call.traces)} if call.traces else {}),
        ALLOWED_HOSTS=f"{SERVER_IP},127.0.0.1,localhost",
    )
    node: SfuNodeProcess | None = None
    daphne: ManagedProcess | None = None
    browsers: list[Any] = []
    result: dict[str, Any] = {
        "label": call.label,
        "feature": call.feature,
        "simulcast": call.simulcast,
        "downlink_estimate": call.downlink,
    }
    try:
        lab.start()
        assert lab.server is not None
        links = [
            lab.add_participant(
                i, NAMES[i - 1], call.scenario.shape_for(i, call.count, call.queue_ms)
            )
            for i in range(1, call.count + 1)
        ]
        descriptions = {link.name: _describe_link(link, call) for link in links}
        lab.wait_reachable()
        node = SfuNodeProcess(env, LOG_DIR / f"{tag}-sfu.log", node_name=tag, wrap=lab.server.wrap)
        node.start(is_live=lambda name: registry.live_nodes().filter(name=name).exists())
        daphne = ManagedProcess(
            "daphne",
            [str(VENV_BIN / "daphne"), "-b", "0.0.0.0", "-p", str(PORT), "meet.asgi:application"],
            env,
            LOG_DIR / f"{tag}-daphne.log",
            lab.server.wrap,
        )
        daphne.start()
        server_ns, web = lab.server, daphne

        def listening() -> bool:
            if not web.alive():
                raise RuntimeError(f"daphne exited:\n{web.log_tail()}")
            return _connects(server_ns, f"exec 3<>/dev/tcp/127.0.0.1/{PORT}")

        wait_until(listening, 30, "daphne to listen")

        users = [
            User.objects.create_user(
                f"{link.name.lower()}-{uuid.uuid4().hex[:8]}@example.org",
                password=None,
                first_name=link.name,
            )
            for link in links
        ]
        url = base_url + create_meeting(users[0])
        participants: list[Participant] = []
        for link, user in zip(links, users, strict=True):
            browser = playwright.chromium.launch(
                executable_path=str(wrapper),
                args=chromium_args(base_url),
                env={
                    **os.environ,
                    "MEET_E2E_NETNS": link.participant.path,
                    "MEET_E2E_CHROMIUM": CHROMIUM,
                },
            )
            browsers.append(browser)
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            context.add_cookies([session_cookie(user, base_url)])
            context.add_init_script(recorder)
            participants.append(Participant(link.name, context, context.new_page()))
        joined_at = time.monotonic()
        for participant in participants:
            participant.join(url)
            expect(participant.leave_button).to_be_visible()
        for participant in participants:
            others = [p.name for p in participants if p is not participant]
            poll(
                functools.partial(participant.page.evaluate, ALL_SEE_ALL_JS, others),
                90,
                f"{participant.name} to see every other participant's video",
                interval=0.5,
            )
        result["ready_s"] = round(time.monotonic() - joined_at, 1)
        _check_addresses(participants, links)

        cpu = CpuMeter()
        for link in links:
            cpu.add_namespace(
                f"chromium {link.name}", link.participant.inode, {link.participant.pid}
            )
            if link.wire is not None:
                cpu.add_pid(f"wire {link.name}", link.wire.pid)
        assert node.process is not None
        assert daphne.process is not None
        cpu.add_pid("sfu node", node.process.pid)
        cpu.add_pid("daphne", daphne.process.pid)
        cpu.add_tree("netlab, redis, playwright", os.getpid())

        # Settle (bandwidth estimates ramp up), then the window.
        settle_end = time.monotonic() + call.settle
        while time.monotonic() < settle_end:
            time.sleep(min(1.0, max(0.0, settle_end - time.monotonic())))

        room = url.rstrip("/").rsplit("/", 1)[-1]
        node_channel = registry.channel_for(node.node_name)
        peer_ids: dict[str, str] = {}
        snapshots: dict[str, list[dict[str, Any]]] = {p.name: [] for p in participants}
        sfu_samples: list[tuple[float, dict[str, Any]]] = []
        link_samples: list[dict[str, Any]] = []
        steps_done: list[dict[str, Any]] = []
        pending = list(call.scenario.steps)
        shaped = [link for link in links if link.shape.shaped]

        async def sfu_stats() -> dict[str, Any]:
            client = NodeClient(node_channel, room, timeout=5)
            replies = await asyncio.gather(
                *(client.get_stats(peer) for peer in peer_ids.values()), return_exceptions=True
            )
            return {
                peer: (reply if isinstance(reply, dict) else {"error": repr(reply)})
                for peer, reply in zip(peer_ids.values(), replies, strict=True)
            }

        dump_before = sfu.run(dump(node_channel, timeout=5))
        cpu.start()
        start = time.monotonic()
        next_sample = start
        while True:
            now = time.monotonic() - start
            while pending and now >= pending[0].at_fraction * call.duration:
                step = pending.pop(0)
                for link in shaped:
                    link.set_rate(step.direction, step.rate_kbit)
                steps_done.append({"at_s": round(now, 2), "label": step.label})
            for participant in participants:
                snapshot = participant.page.evaluate(SNAPSHOT_JS)
                snapshot["at"] = time.monotonic() - start
                snapshots[participant.name].append(snapshot)
                if snapshot.get("peerId"):
                    peer_ids[participant.name] = snapshot["peerId"]
            sfu_samples.append((time.monotonic() - start, sfu.run(sfu_stats())))
            link_samples.append(
                {
                    "at": time.monotonic() - start,
                    **{
                        link.name: {"qdisc": link.qdisc_stats(), "wire": link.wire_stats()}
                        for link in shaped
                    },
                }
            )
            if now >= call.duration:
                break
            next_sample += call.interval
            delay = next_sample - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        load = cpu.stop()
        dump_after = sfu.run(dump(node_channel, timeout=5))

        names = {peer: name for name, peer in peer_ids.items()}
        result.update(
            {
                "participants": [
                    {"name": link.name, "ip": link.ip, "link": descriptions[link.name]}
                    for link in links
                ],
                "steps": steps_done,
                "load": load,
                "viewers": {n: summarize_viewer(s) for n, s in snapshots.items()},
                "publishers": {n: summarize_publisher(s) for n, s in snapshots.items()},
                "sfu": summarize_sfu(sfu_samples, names),
                "sfu_dump": {"before": dump_before, "after": dump_after},
                "links": {link.name: _link_window(link_samples, link.name) for link in shaped},
                "timeline": _timeline(snapshots, sfu_samples, link_samples, names),
            }
        )
        if call.scenario.steps:
            result["phases"] = _phases(call, snapshots, steps_done)
        return result
    finally:
        for browser in browsers:
            try:
                browser.close()
            except Exception as error:  # a crashed browser must not keep the lab up
                print(f"warning: closing a browser: {error}", file=sys.stderr)
        if daphne is not None:
            daphne.stop()
        if node is not None:
            node.stop()
        lab.close()


def _describe_link(link: Link, call: Call) -> str:
    """The link as set up, and the rate changes the window will make on it."""
    text = link.shape.describe()
    if link.shape.shaped and call.scenario.steps:
        changes = ", ".join(
            f"{step.direction} {step.label} at {step.at_fraction * call.duration:g} s"
            for step in call.scenario.steps
        )
        text += f"; then {changes}"
    return text


def _connects(namespace: Namespace, probe: str) -> bool:
    import subprocess

    return (
        subprocess.run(
            ["nsenter", f"--net={namespace.path}", "--", "bash", "-c", probe],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def _check_addresses(participants: list[Any], links: list[Link]) -> None:
    """Every selected ICE pair runs between the participant's own address and the SFU's."""
    for participant, link in zip(participants, links, strict=True):
        for local, remote in participant.selected_candidate_addresses():
            if (local, remote) != (link.ip, SERVER_IP):
                raise RuntimeError(
                    f"{participant.name}'s media goes {local} -> {remote},"
                    f" not {link.ip} -> {SERVER_IP}"
                )


def _link_window(samples: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Counters of one shaped link over the window: tbf sent/drops/backlog, the wire's loss and
    lateness, per direction."""
    first, last = samples[0].get(name, {}), samples[-1].get(name, {})
    window = samples[-1]["at"] - samples[0]["at"]
    result: dict[str, Any] = {}
    for direction in ("down", "up"):
        entry: dict[str, Any] = {}
        q0 = (first.get("qdisc") or {}).get(direction)
        q1 = (last.get("qdisc") or {}).get(direction)
        if q0 and q1:
            entry["tbf_kbps"] = round(8 * (q1["bytes"] - q0["bytes"]) / 1000 / window, 1)
            entry["tbf_packets"] = q1["packets"] - q0["packets"]
            entry["tbf_drops"] = q1["drops"] - q0["drops"]
            backlogs = [
                ((s.get(name, {}).get("qdisc") or {}).get(direction) or {}).get("backlog", 0)
                for s in samples
            ]
            entry["tbf_backlog_bytes_max"] = max(backlogs)
        w0 = (first.get("wire") or {}).get(direction)
        w1 = (last.get("wire") or {}).get(direction)
        if w0 and w1:
            entry["wire_frames"] = w1["frames_in"] - w0["frames_in"]
            entry["wire_lost"] = w1["lost"] - w0["lost"]
            entry["wire_late_over_2ms"] = w1["late_over_2ms"] - w0["late_over_2ms"]
            entry["wire_late_over_10ms"] = w1["late_over_10ms"] - w0["late_over_10ms"]
            entry["wire_late_ms_max_run"] = w1["late_ms_max"]
            entry["wire_socket_drops"] = w1["socket_drops"] - w0["socket_drops"]
        if entry:
            result[direction] = entry
    return result


def _timeline(
    snapshots: dict[str, list[dict[str, Any]]],
    sfu_samples: list[tuple[float, dict[str, Any]]],
    link_samples: list[dict[str, Any]],
    names: dict[str, str],
) -> list[dict[str, Any]]:
    """Per sample: what each viewer received from each publisher (cumulative counters and the
    current resolution), each publisher's estimate and encodings, the SFU consumers' rates and
    layer fields, the shaped links' queues. Rates are for the reader to difference."""
    rows = []
    count = min(len(s) for s in snapshots.values())
    for i in range(count):
        row: dict[str, Any] = {"at": round(next(iter(snapshots.values()))[i]["at"], 2)}
        for name, series in snapshots.items():
            snapshot = series[i]
            videos = {
                publisher: {
                    "h": stat.get("frameHeight"),
                    "frames": stat.get("framesDecoded"),
                    "bytes": stat.get("bytesReceived"),
                    "freezes": stat.get("freezeCount"),
                    "freeze_s": stat.get("totalFreezesDuration"),
                    "lost": stat.get("packetsLost"),
                }
                for publisher, stat in remote_videos(snapshot).items()
            }
            pair = receive_pair(snapshot) or {}
            sending = [pc for pc in snapshot["pcs"] if pc["outboundVideo"]]
            row[name] = {
                "t": round(snapshot["t"], 3),
                "rx": videos,
                "rtt": pair.get("currentRoundTripTime"),
                "bwe_out": (sending[0]["pair"] or {}).get("availableOutgoingBitrate")
                if sending
                else None,
                "tx": [
                    {
                        "rid": o.get("rid"),
                        "h": o.get("frameHeight"),
                        "bytes": o.get("bytesSent"),
                        "limit": o.get("qualityLimitationReason"),
                    }
                    for o in (sending[0]["outboundVideo"] if sending else [])
                ],
            }
        if i < len(sfu_samples):
            consumers = []
            for peer, stats in sfu_samples[i][1].items():
                for c in stats.get("consumers", []) if isinstance(stats, dict) else []:
                    if c.get("kind") != "video":
                        continue
                    consumers.append(
                        {
                            "viewer": names.get(peer, peer),
                            "publisher": names.get(c.get("producer_peer_id"), "?"),
                            "bps": c.get("bitrate_bps"),
                            **{
                                k: c[k]
                                for k in ("layer", "target_layer", "layer_switches")
                                if k in c
                            },
                        }
                    )
            row["sfu"] = consumers
            # The node's estimate of each viewer's downlink over time (sfu/downlink.py).
            downlinks = {}
            for peer, stats in sfu_samples[i][1].items():
                transports = stats.get("transports", []) if isinstance(stats, dict) else []
                for transport in transports:
                    downlink = transport.get("downlink")
                    if transport.get("direction") == "receive" and isinstance(downlink, dict):
                        downlinks[names.get(peer, peer)] = {
                            "estimate_kbps": round((downlink.get("estimate_bps") or 0) / 1000),
                            "acked_kbps": round((downlink.get("acknowledged_bps") or 0) / 1000),
                            "delay": downlink.get("delay_state"),
                            "loss": downlink.get("loss_fraction"),
                            "probes": downlink.get("probes"),
                            "probes_ok": downlink.get("probes_succeeded"),
                        }
            if downlinks:
                row["downlink"] = downlinks
        if i < len(link_samples):
            row["links"] = {
                name: {d: (v.get("qdisc") or {}).get(d, {}).get("backlog") for d in ("down", "up")}
                for name, v in link_samples[i].items()
                if name != "at"
            }
        rows.append(row)
    return rows


def _phases(
    call: Call, snapshots: dict[str, list[dict[str, Any]]], steps: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The window cut at each rate change: every viewer summarized per phase, and for the
    shaped viewer how long after each change its pictures settled."""
    bounds = [0.0, *[s["at_s"] for s in steps], float("inf")]
    labels = ["before", *[s["label"] for s in steps]]
    phases = []
    shaped_name = NAMES[call.count - 1]
    for index, label in enumerate(labels):
        lo, hi = bounds[index], bounds[index + 1]
        phase: dict[str, Any] = {"label": label, "from_s": round(lo, 1), "viewers": {}}
        for name, series in snapshots.items():
            part = [s for s in series if lo - 1e-6 <= s["at"] <= hi + 1e-6]
            phase["viewers"][name] = summarize_viewer(part)
        part = [s for s in snapshots[shaped_name] if lo <= s["at"] <= hi]
        phase["shaped_viewer_settled_s"] = _settled_after(part, lo)
        phases.append(phase)
    return phases


def _settled_after(series: list[dict[str, Any]], since: float) -> float | None:
    """Seconds from `since` until every remote video of this viewer decoded >= 15 fps with a
    steady height for 3 consecutive sampling intervals (None: not within the phase)."""
    run = 0
    for previous, current in itertools.pairwise(series):
        before, after = remote_videos(previous), remote_videos(current)
        dt = current["t"] - previous["t"]
        ok = bool(after) and dt > 0
        for name, stat in after.items():
            old = before.get(name)
            if old is None or old.get("ssrc") != stat.get("ssrc"):
                ok = False
                break
            fps = ((stat.get("framesDecoded") or 0) - (old.get("framesDecoded") or 0)) / dt
            if fps < 15 or stat.get("frameHeight") != old.get("frameHeight"):
                ok = False
        run = run + 1 if ok else 0
        if run >= 3:
            index = series.index(current) - 3
            return round(max(0.0, series[index]["at"] - since), 1)
    return None


# --- output ---------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _load_cell(load: dict[str, Any]) -> str:
    return f"{load['loadavg'][0]:.1f} / {load['machine_busy_pct']:.0f} %"


def _others(load: dict[str, Any]) -> float:
    """CPU (% of a core) of everything but the lab's processes (files before the lab recorded
    it: computed the same way)."""
    if "others_pct_of_core" in load:
        return float(load["others_pct_of_core"])
    busy = load["machine_busy_pct"] * (load.get("cpus") or 1)
    return round(max(0.0, busy - sum(load["processes_pct_of_core"].values())), 1)


def _layer_cell(consumer: dict[str, Any]) -> str:
    """The SFU's layer choice for one consumer, when the node reports one."""
    if "layer" not in consumer and "target_layer" not in consumer:
        return "-"
    cell = f"{_fmt(consumer.get('layer'))} (target {_fmt(consumer.get('target_layer'))})"
    if "layer_switches" in consumer:
        cell += f", {_fmt(consumer['layer_switches'])} switches"
    return cell


def _producer_layers_cell(extra: dict[str, Any]) -> str:
    layers = extra.pop("layers", None)
    parts = []
    if isinstance(layers, list):
        for layer in layers:
            if not isinstance(layer, dict):
                continue
            if not layer.get("active"):
                parts.append(f"{layer.get('rid')} off")
                continue
            kbps = round((layer.get("bitrate_bps") or 0) / 1000)
            temporal = layer.get("temporal_layers")
            parts.append(
                f"{layer.get('rid')} {layer.get('width')}x{layer.get('height')} {kbps} kbit/s"
                + (f", {temporal} temporal layers" if temporal else "")
                + f" ({layer.get('keyframe_requests', '-')} key-frame requests in all)"
            )
    if extra:
        parts.append(json.dumps(extra))
    return "; ".join(parts) or "-"


def render(results: dict[str, Any]) -> str:
    out = []
    calls = results["calls"]
    viewer_rows, publisher_rows, load_rows, link_rows, sfu_rows = [], [], [], [], []
    for call in calls:
        if "error" in call:
            viewer_rows.append([call["label"], f"failed: {call['error'][:80]}", *[""] * 13])
            continue
        links = {p["name"]: p["link"] for p in call["participants"]}
        load = _load_cell(call["load"])
        sfu_by_pair = {
            (c["viewer"], c["publisher"]): c
            for c in call["sfu"].get("consumers", [])
            if c["kind"] == "video"
        }
        downlinks = call["sfu"].get("downlink_estimate_kbps") or {}
        for viewer, summary in call["viewers"].items():
            rtt = summary.get("rtt_ms") or {}
            indicator = summary.get("indicator") or {}
            own = indicator.get(f"{viewer} (You)")
            who = f"{viewer} ({links[viewer]})"
            if viewer in downlinks:
                e = downlinks[viewer]
                who += f"; node's estimate {e['mean']} ({e['min']}-{e['max']}) kbit/s"
            for publisher, v in sorted(summary["videos"].items()):
                sfu = sfu_by_pair.get((viewer, publisher), {})
                layer = _layer_cell(sfu)
                viewer_rows.append(
                    [
                        call["label"],
                        who,
                        publisher,
                        f"{v['frame_width']}x{v['frame_height']}",
                        _fmt(v["fps"], 1),
                        f"{v['freezes']} / {v['freeze_s']:.1f}",
                        _fmt(v["loss_pct"], 1),
                        str(v["nacks"]),
                        str(v["plis"]),
                        _fmt(v["kbps"]),
                        f"{_fmt(rtt.get('mean'))} ({_fmt(rtt.get('max'))})",
                        _fmt(sfu.get("retransmissions_sent")),
                        layer or "-",
                        f"{indicator.get(publisher) or '-'} / {own or '-'}",
                        load,
                    ]
                )
        for publisher, summary in call["publishers"].items():
            estimate = summary.get("estimate_kbps") or {}
            for rid, e in summary["encodings"].items():
                if e["active"] is False or (not e["frame_height"] and not e["kbps"]):
                    publisher_rows.append(
                        [call["label"], f"{publisher} ({links[publisher]})", rid, "inactive",
                         *["-"] * 5, load]
                    )  # fmt: skip
                    continue
                limit = e["quality_limitation"] or "-"
                shares = ", ".join(
                    f"{k} {round(100 * s)} %"
                    for k, s in e["quality_limitation_share"].items()
                    if k != "none"
                )
                publisher_rows.append(
                    [
                        call["label"],
                        f"{publisher} ({links[publisher]})",
                        rid,
                        f"{e['frame_width']}x{e['frame_height']}",
                        _fmt(e["fps"], 1),
                        _fmt(e["kbps"]),
                        str(e["key_frames"]),
                        f"{limit}" + (f" ({shares})" if shares else ""),
                        f"{_fmt(estimate.get('mean'))} ({_fmt(estimate.get('min'))}-"
                        f"{_fmt(estimate.get('max'))})",
                        load,
                    ]
                )
        processes = call["load"]["processes_pct_of_core"]
        load_rows.append(
            [
                call["label"],
                f"{call['load']['loadavg'][0]:.2f}",
                f"{call['load']['machine_busy_pct']:.0f}",
                ", ".join(
                    f"{k.removeprefix('chromium ')} {v:.0f}"
                    for k, v in processes.items()
                    if k.startswith("chromium")
                ),
                _fmt(processes.get("sfu node"), 1),
                _fmt(processes.get("daphne"), 1),
                ", ".join(f"{v:.1f}" for k, v in processes.items() if k.startswith("wire")) or "-",
                _fmt(processes.get("netlab, redis, playwright"), 1),
                _fmt(_others(call["load"]), 0),
                _fmt(call.get("ready_s"), 1),
            ]
        )
        for name, link in call["links"].items():
            for direction, d in link.items():
                link_rows.append(
                    [
                        call["label"],
                        f"{name} {direction}",
                        _fmt(d.get("tbf_kbps")),
                        _fmt(d.get("tbf_drops")),
                        _fmt(d.get("tbf_backlog_bytes_max")),
                        _fmt(d.get("wire_lost")),
                        f"{_fmt(d.get('wire_late_over_10ms'))} / {_fmt(d.get('wire_frames'))}",
                    ]
                )
        for producer in call["sfu"].get("producers", []):
            if producer["kind"] != "video":
                continue
            extra = {
                k: v
                for k, v in producer.items()
                if k not in {"publisher", "kind", "source", "kbps", "keyframe_requests",
                             "nacks_sent", "packets_lost", "duplicates_dropped"}
            }  # fmt: skip
            sfu_rows.append(
                [
                    call["label"],
                    producer["publisher"],
                    _fmt(producer["kbps"]),
                    str(producer["keyframe_requests"]),
                    str(producer["nacks_sent"]),
                    str(producer["packets_lost"]),
                    _fmt(producer.get("duplicates_dropped")),
                    _producer_layers_cell(extra),
                ]
            )
    out.append(
        "Viewers (per remote video, over the window; indicator = the connection quality the"
        " viewer's page shows on that tile / on its own; load = 1-min load average / machine"
        " busy %)"
    )
    out.append(
        _table(
            [
                "run",
                "viewer (its link)",
                "from",
                "res",
                "fps",
                "freezes n / s",
                "loss %",
                "NACK",
                "PLI",
                "kbit/s",
                "RTT ms mean (max)",
                "SFU rtx",
                "SFU layer",
                "indicator them / me",
                "load",
            ],
            viewer_rows,
        )
    )
    out.append("\nPublishers (per encoding; BWE = availableOutgoingBitrate, mean (min-max))")
    out.append(
        _table(
            [
                "run",
                "publisher (its link)",
                "rid",
                "res",
                "fps",
                "kbit/s",
                "key frames",
                "quality limit (share)",
                "BWE kbit/s",
                "load",
            ],
            publisher_rows,
        )
    )
    out.append("\nSFU producers (video: what reached the node; key-frame requests it relayed)")
    out.append(
        _table(
            [
                "run",
                "publisher",
                "kbit/s in",
                "key-frame requests",
                "NACKs sent",
                "lost",
                "RTX duplicates dropped",
                "layer fields",
            ],
            sfu_rows,
        )
    )
    if link_rows:
        out.append("\nShaped links (tbf = the rate limit's queue; wire = the delay line)")
        out.append(
            _table(
                [
                    "run",
                    "link",
                    "kbit/s through",
                    "tbf drops",
                    "max backlog B",
                    "wire lost",
                    "wire late >10 ms / frames",
                ],
                link_rows,
            )
        )
    out.append(
        "\nLoad (CPU % of one core over the window; busy % of all cores; others = everything"
        " else on the machine, e.g. other test runs)"
    )
    out.append(
        _table(
            [
                "run",
                "load 1m",
                "busy %",
                "Chromium % per participant",
                "SFU %",
                "daphne %",
                "wire %",
                "netlab + redis + playwright %",
                "others %",
                "all see all after s",
            ],
            load_rows,
        )
    )
    verdicts = netlab_targets.evaluate(results)
    if verdicts:
        out.append(
            "\nTargets (the per-viewer-quality issue's, per scenario; can't say = the run lacks"
            " what it would take, e.g. an unshaped call to compare key frames with)"
        )
        out.append(
            _table(["run", "target", "measured", "verdict"], netlab_targets.render(verdicts))
        )
    for call in calls:
        for phase in call.get("phases", []):
            if phase is call.get("phases", [])[0]:
                out.append(f"\nPhases of {call['label']} (shaped viewer)")
            shaped = call["participants"][-1]["name"]
            summary = phase["viewers"].get(shaped, {})
            videos = summary.get("videos", {})
            cells = "; ".join(
                f"{p}: {v['frame_height']}p {v['fps']} fps {v['kbps']} kbit/s"
                f" freezes {v['freezes']} ({v['freeze_s']} s)"
                for p, v in sorted(videos.items())
            )
            out.append(
                f"- from {phase['from_s']} s, {phase['label']}: {cells or 'no samples'};"
                f" settled after {_fmt(phase['shaped_viewer_settled_s'], 1)} s"
            )
    return "\n".join(out)


# --- main -----------------------------------------------------------------------------------
def preflight() -> str | None:
    """Why the lab cannot run here (None: it can)."""
    from tests.e2e.stack import CHROMIUM

    if os.geteuid() != 0:
        return "the network lab needs root (network namespaces, tc)"
    for tool in ("unshare", "nsenter", "setpriv", "ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM}"
    try:
        namespace = Namespace.create("preflight")
    except (RuntimeError, OSError) as error:
        return f"cannot create a network namespace: {error}"
    try:
        namespace.run("ip", "link", "add", "pf0", "type", "veth", "peer", "name", "pf1")
        namespace.run("tc", "qdisc", "add", "dev", "pf0", "root", "tbf", "rate", "1mbit",
                      "burst", "3200", "latency", "50ms")  # fmt: skip
    except RuntimeError as error:
        return f"cannot build links: {error}"
    finally:
        namespace.close()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="one-slow-viewer")
    parser.add_argument(
        "--participants", type=int, default=3, help="Chromium participants (default 3)"
    )
    parser.add_argument("--duration", type=float, help="measured window, s (default per scenario)")
    parser.add_argument("--settle", type=float, default=10.0, help="s after all see all")
    parser.add_argument("--interval", type=float, help="sampling period, s")
    parser.add_argument("--variants", default="on,off", help="the feature on, off or both")
    parser.add_argument(
        "--feature",
        choices=("simulcast", "downlink"),
        default="simulcast",
        help="what on/off switches: simulcast (SFU_SIMULCAST, the estimate follows it) or "
        "downlink (SFU_DOWNLINK_ESTIMATE, simulcast on in both)",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the unshaped call measured beside it"
    )
    parser.add_argument("--queue-ms", type=float, default=80.0, help="tbf queue, ms at the rate")
    parser.add_argument(
        "--traces",
        type=Path,
        metavar="DIR",
        help="have the node write each viewer's downlink trace (sends and transport-wide "
        "feedback, for sfu/tests/traces/) into DIR/<run label>/",
    )
    parser.add_argument("--seed", type=int, default=None, help="the wires' random seed")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--render", type=Path, metavar="JSON", help="print a results file")
    args = parser.parse_args(argv)

    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0

    if args.list:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:16} {scenario.summary}")
        return 0
    if not 2 <= args.participants <= len(NAMES):
        parser.error(f"--participants must be 2..{len(NAMES)}")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or any(v not in ("on", "off") for v in variants):
        parser.error("--variants takes on, off or on,off")
    scenario = SCENARIOS[args.scenario]
    duration = args.duration or scenario.default_duration
    interval = args.interval or scenario.default_interval
    reason = preflight()
    if reason:
        print(f"netlab: {reason}", file=sys.stderr)
        return 2

    stop_requested: list[int] = []

    def interrupted(signum: int, frame: object) -> None:
        # Ctrl-C reaches the browsers too; whatever fails first afterwards is the interrupt.
        stop_requested.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    (REPO / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="netlab-", dir=REPO / "var"))
    embedded, _ = prepare_environment(work)
    scenarios = [scenario]
    if scenario.name != "unshaped" and not args.no_baseline:
        scenarios.append(SCENARIOS["unshaped"])
    calls = [
        Call(
            scenario=s,
            simulcast=variant == "on" or args.feature == "downlink",
            downlink=variant == "on",
            feature=args.feature,
            traces=(args.traces / f"{s.name}-{variant}").resolve() if args.traces else None,
            count=args.participants,
            duration=duration,
            settle=args.settle,
            interval=interval,
            queue_ms=args.queue_ms,
            seed=args.seed,
            work=work,
        )
        for s in scenarios
        for variant in variants
    ]
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "benchmark": "netlab",
        "scenario": scenario.name,
        "summary": scenario.summary,
        "when": started.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "args": {
            "participants": args.participants,
            "duration_s": duration,
            "settle_s": args.settle,
            "interval_s": interval,
            "queue_ms": args.queue_ms,
            "variants": variants,
            "feature": args.feature,
            "baseline": len(scenarios) > 1,
        },
        "calls": [],
    }
    sfu: AsyncThread | None = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from playwright.sync_api import sync_playwright

        call_command("migrate", verbosity=0)
        sfu = AsyncThread()
        with sync_playwright() as playwright:
            for serial, call in enumerate(calls, 1):
                print(
                    f"[{datetime.now(UTC):%H:%M:%S}] {call.label}: {call.count} participants,"
                    f" {call.scenario.summary}; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                try:
                    results["calls"].append(run_call(call, playwright, sfu, serial))
                except (RuntimeError, AssertionError, TimeoutError) as error:
                    if stop_requested:
                        raise
                    print(f"  failed: {error}", file=sys.stderr, flush=True)
                    results["calls"].append({"label": call.label, "error": str(error)})
    except Exception:
        if not stop_requested:
            raise
        print("interrupted: cleaned up", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        return 130
    finally:
        if sfu is not None:
            sfu.close()
        if embedded is not None:
            from meet import embedded_redis

            embedded_redis.stop(*embedded)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"netlab {scenario.name}: {scenario.summary}; {args.participants} participants,"
        f" {duration:g} s window after {args.settle:g} s settle, {os.cpu_count()} CPUs"
    )
    results["targets"] = [v.as_dict() for v in netlab_targets.evaluate(results)]
    print(render(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"netlab-{scenario.name}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nJSON: {out}")
    return 0 if all("error" not in c for c in results["calls"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
