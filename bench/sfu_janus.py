"""Janus (VideoRoom) behind the SFU node's channel API, for bench/sfu.py.

    python bench/sfu_janus.py CHANNEL [--event-loops N] [--log FILE] [--debug-level L]

What: a process like bench/sfu_relay.py that answers the subset of the node API the benchmark
uses (ping, join, produce, receiveAnswer, leave, dump) on CHANNEL and turns it into Janus HTTP
API calls, so the same Publisher and load-process Subscriber code measures Debian's janus 1.1.2
beside our node. `dump` reports `server_pid`, the janus process: that, not this adapter, is the
process whose CPU the benchmark must read.

How:
- Janus runs as a child with a configuration generated in a temporary folder: the VideoRoom
  plugin and the plain HTTP transport only (every other plugin, transport, logger and event
  handler disabled: quick start-up, nothing else listening), HTTP bound to 127.0.0.1 on a free
  port, admin API off; ICE on 127.0.0.1 only (`interface` and `ice_enforce_list`), no STUN, no
  TURN, no NAT 1:1, no IPv6, mDNS candidates ignored; `event_loops = N` when N > 0 (N = 0 is
  Janus's default: one thread and GLib loop per handle); it logs to a file (--log, default in
  the temporary folder).
- Janus skips loopback interfaces when it gathers host candidates (and, finding none to use,
  libnice then gathers on every interface), so it runs with bench/janus_loopback_shim.c
  preloaded (getifaddrs without IFF_LOOPBACK), compiled on first use into bench/results/
  (git-ignored). Every SDP Janus produces is checked to carry 127.0.0.1 candidates and no other
  address before it reaches a peer; one that does not fails the request.
- One Janus session for the whole adapter (keepalive every 20 s, one long-poll task for its
  events). A bench room is a VideoRoom room of the same name (string_ids), created on its first
  join (VP8 + Opus, 2 Mbps cap, no recording, 100 publishers, notify_joining off) and destroyed
  with its last peer. `produce`: a publisher handle joins and publishes the aiortc offer (ICE
  fully gathered, so sent with `"trickle": false`, which also spares the trickle "completed"
  message) and the reply carries Janus's answer. A subscriber gets one subscriber handle
  subscribed to every other publisher's feed; Janus's offer goes to its peer channel as the
  node's `negotiate` event and `receiveAnswer` "start"s the handle with the answer. A feed
  published after subscribers joined is added to their subscription ("subscribe" on the
  handle: a new offer), as bench/sfu_relay.py does. Offers Janus makes on its own (a feed left:
  autoupdate) are forwarded the same way. `leave` detaches the peer's handles.
- Janus lets a subscriber in only once the publisher's PeerConnection is up (428 "No such
  feed" before), so a feed counts from the publisher handle's `webrtcup` event on; that event
  also subscribes the peers already in the room.
- HTTP uses only the standard library: http.client in worker threads (one for the long poll).
- SIGTERM/SIGINT: the session is destroyed, janus gets SIGTERM (it closes its PeerConnections
  and exits), then this process exits. If janus dies or the session is lost, this process
  exits too (status 1); if this process dies, janus gets SIGTERM (PR_SET_PDEATHSIG).

Run it by hand with the benchmark's environment (REDIS_URL, CHANNEL_LAYER_PREFIX, ... as
bench/sfu.py's prepare_environment sets them); janus must be installed
(scripts/ensure-janus.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The repository first: bench/sfu.py must not shadow the sfu package.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")

from channels.layers import get_channel_layer

from sfu.channel_api import (
    MalformedRequest,
    error_response,
    ok_response,
    parse_request,
)

logger = logging.getLogger("bench.janus")

BENCH = Path(__file__).resolve().parent
SHIM_SOURCE = BENCH / "janus_loopback_shim.c"
SHIM_CACHE = BENCH / "results" / "janus-shim"  # bench/results/ is git-ignored
LOOPBACK = "127.0.0.1"
VIDEOROOM = "janus.plugin.videoroom"
KEEPALIVE_SECONDS = 20.0  # Janus drops a session after 60 s without a request
SESSION_TIMEOUT = 60
LONG_POLL_EVENTS = 50  # events per long-poll answer (maxev)
HTTP_TIMEOUT = 30.0  # a plain request
LONG_POLL_TIMEOUT = 45.0  # Janus answers an idle long poll after 30 s
PLUGIN_TIMEOUT = 30.0  # a plugin's asynchronous answer (join, publish, start, ...)
SUBSCRIBE_ATTEMPTS = 5
SUBSCRIBE_RETRY_SECONDS = 0.3
START_TIMEOUT = 30.0  # janus up and answering HTTP
ROOM_OPTIONS: dict[str, Any] = {
    "description": "bench",
    "permanent": False,  # never written back to the (temporary) videoroom config
    "is_private": True,
    "publishers": 100,
    "bitrate": 2_000_000,  # the REMB cap towards publishers: well above the ~1 Mbps clip
    "fir_freq": 0,  # no periodic keyframe requests; Janus still asks one per new subscriber
    "audiocodec": "opus",
    "videocodec": "vp8",
    "record": False,
    "notify_joining": False,
}
JANUS_PLUGIN_LIBRARY = "libjanus_videoroom.so"
JANUS_TRANSPORT_LIBRARY = "libjanus_http.so"
# Janus error codes handled on purpose (plugins/janus_videoroom.c).
VIDEOROOM_ROOM_EXISTS = 427
VIDEOROOM_NO_SUCH_FEED = 428


class JanusError(Exception):
    """Janus answered with an error (core: "janus": "error"; plugin: error_code)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason


# --- the janus process ---------------------------------------------------------------------
def janus_library_folder(kind: str) -> Path:
    """Where Debian's janus keeps its plugins/transports/events/loggers."""
    for candidate in (
        Path("/usr/lib/x86_64-linux-gnu/janus") / kind,
        Path("/usr/lib/aarch64-linux-gnu/janus") / kind,
        Path("/usr/lib/janus") / kind,
        Path("/opt/janus/lib/janus") / kind,
    ):
        if candidate.is_dir():
            return candidate
    matches = sorted(Path("/usr/lib").glob(f"*/janus/{kind}"))
    if matches:
        return matches[0]
    raise RuntimeError(f"janus {kind} folder not found (is janus installed?)")


def build_shim() -> Path:
    """Compile the loopback shim once per source version (the file name carries its hash)."""
    source = SHIM_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:12]
    target = SHIM_CACHE / f"janus_loopback_shim-{digest}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) to build bench/janus_loopback_shim.c")
    SHIM_CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SHIM_SOURCE), "-ldl"],
        check=True,
    )
    partial.replace(target)  # atomic: a concurrent run never loads a half-written file
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def disabled_libraries(folder: Path, keep: set[str]) -> str:
    """Every shared library in `folder` but `keep`, as Janus's `disable` list wants them."""
    names = sorted(p.name for p in folder.glob("libjanus_*.so"))
    return ",".join(name for name in names if name not in keep)


def write_configuration(
    folder: Path, http_port: int, event_loops: int, log_file: Path, debug_level: int
) -> Path:
    """janus.jcfg + the HTTP transport's and VideoRoom's files, in `folder`; returns janus.jcfg.

    Janus reads a plugin's or transport's configuration as <configs_folder>/<package>.jcfg.
    """
    plugins = janus_library_folder("plugins")
    transports = janus_library_folder("transports")
    events = janus_library_folder("events")
    loggers = janus_library_folder("loggers")
    loops = f"\tevent_loops = {event_loops}\n" if event_loops > 0 else ""
    general = (
        "general: {\n"
        f'\tconfigs_folder = "{folder}"\n'
        f'\tplugins_folder = "{plugins}"\n'
        f'\ttransports_folder = "{transports}"\n'
        f'\tevents_folder = "{events}"\n'
        f'\tloggers_folder = "{loggers}"\n'
        "\tlog_to_stdout = false\n"
        f'\tlog_to_file = "{log_file}"\n'
        f"\tdebug_level = {debug_level}\n"
        "\tdebug_timestamps = true\n"
        "\tdebug_colors = false\n"
        # The address Janus puts in its SDP's c= lines (and would take as "the" local IP).
        f'\tinterface = "{LOOPBACK}"\n'
        f"\tsession_timeout = {SESSION_TIMEOUT}\n"
        "\thide_dependencies = true\n"
        f"{loops}"
        "}\n"
    )
    rest = (
        "media: {\n"
        "\tipv6 = false\n"
        "}\n"
        "nat: {\n"
        "\tnice_debug = false\n"
        # No stun_server, turn_*, nat_1_1_mapping: host candidates only. The enforce list
        # matches addresses by substring, so the address, not "lo" (which "wlo1" contains).
        f'\tice_enforce_list = "{LOOPBACK}"\n'
        "\tignore_mdns = true\n"
        "}\n"
        "plugins: {\n"
        f'\tdisable = "{disabled_libraries(plugins, {JANUS_PLUGIN_LIBRARY})}"\n'
        "}\n"
        "transports: {\n"
        f'\tdisable = "{disabled_libraries(transports, {JANUS_TRANSPORT_LIBRARY})}"\n'
        "}\n"
        "loggers: {\n"
        f'\tdisable = "{disabled_libraries(loggers, set())}"\n'
        "}\n"
        "events: {\n"
        "\tbroadcast = false\n"
        "}\n"
    )
    (folder / "janus.jcfg").write_text(general + rest)
    (folder / "janus.transport.http.jcfg").write_text(
        "general: {\n"
        '\tjson = "compact"\n'
        '\tbase_path = "/janus"\n'
        "\thttp = true\n"
        f"\tport = {http_port}\n"
        f'\tip = "{LOOPBACK}"\n'
        "\thttps = false\n"
        '\tacl = "127."\n'
        "}\n"
        "admin: {\n"
        "\tadmin_http = false\n"
        "\tadmin_https = false\n"
        "}\n"
    )
    # Rooms are created through the API; string IDs let a bench room keep its name.
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n\tstring_ids = true\n}\n")
    return folder / "janus.jcfg"


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM if this adapter dies (no orphaned janus)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --- SDP checks ----------------------------------------------------------------------------
_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ (\S+)", re.MULTILINE)
_CONNECTION = re.compile(r"^c=IN IP[46] (\S+)", re.MULTILINE)


def check_loopback_sdp(sdp: str) -> None:
    """Janus's SDP must offer 127.0.0.1 host candidates and no other address."""
    candidates = _CANDIDATE.findall(sdp)
    if not candidates:
        raise RuntimeError("Janus's SDP has no ICE candidate (is the loopback shim loaded?)")
    others = {f"{address} ({kind})" for address, kind in candidates if address != LOOPBACK}
    others |= {address for address in _CONNECTION.findall(sdp) if address != LOOPBACK}
    if others:
        raise RuntimeError(f"Janus's SDP names addresses other than {LOOPBACK}: {others}")


# --- the Janus HTTP API --------------------------------------------------------------------
class JanusApi:
    """One Janus session over the HTTP transport: requests, plugin messages, its events.

    Plugin messages are asynchronous: the POST is only acknowledged and the answer arrives as
    an event with the same transaction on the session's long poll, where it resolves the
    waiting future. Events without a pending transaction (webrtcup, hangup, offers Janus
    makes on its own) go to the callback registered for their handle.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.session_id: int | None = None
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.handle_events: dict[int, Callable[[dict[str, Any]], Awaitable[None]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.lost = asyncio.Event()  # the session is gone: this adapter cannot go on
        # Requests block a worker thread only until Janus acknowledges them (plugin answers
        # come on the long poll), so a few threads carry a join burst; the long poll has its
        # own thread, so it never waits behind them.
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="janus-http")
        self.poll_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="janus-poll")

    # Plain blocking HTTP, run in a worker thread: the standard library has no asyncio client.
    def _http(self, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise JanusError(response.status, data.decode(errors="replace")[:200])
        return json.loads(data)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        transaction = body.setdefault("transaction", uuid.uuid4().hex)
        reply: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(
            self.executor, self._http, "POST", path, body, HTTP_TIMEOUT
        )
        if reply.get("janus") == "error":
            error = reply.get("error") or {}
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "")))
        if reply.get("transaction") not in (None, transaction):
            raise JanusError(0, f"answer to another transaction: {reply}")
        return reply

    async def info(self) -> dict[str, Any]:
        reply: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(
            self.executor, self._http, "GET", "/janus/info", None, 2.0
        )
        return reply

    def close(self) -> None:
        """After janus stopped (its end releases a long poll blocked in its thread)."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.poll_executor.shutdown(wait=True, cancel_futures=True)

    async def create_session(self) -> None:
        reply = await self.post("/janus", {"janus": "create"})
        self.session_id = int(reply["data"]["id"])
        self.spawn(self._long_poll())
        self.spawn(self._keepalive())

    async def destroy_session(self) -> None:
        if self.session_id is not None:
            with contextlib.suppress(Exception):
                await self.post(f"/janus/{self.session_id}", {"janus": "destroy"})

    async def attach(self, on_event: Callable[[dict[str, Any]], Awaitable[None]]) -> int:
        reply = await self.post(
            f"/janus/{self.session_id}", {"janus": "attach", "plugin": VIDEOROOM}
        )
        handle_id = int(reply["data"]["id"])
        self.handle_events[handle_id] = on_event
        return handle_id

    async def detach(self, handle_id: int) -> None:
        self.handle_events.pop(handle_id, None)
        try:
            await self.post(f"/janus/{self.session_id}/{handle_id}", {"janus": "detach"})
        except JanusError as exc:  # already gone (e.g. Janus hung it up): nothing to free
            logger.info("detach %s: %s", handle_id, exc)

    async def request(self, handle_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create, destroy, exists, ...): its data."""
        reply = await self.post(
            f"/janus/{self.session_id}/{handle_id}", {"janus": "message", "body": body}
        )
        return self._plugin_data(reply)

    async def message(
        self, handle_id: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """An asynchronous plugin request: (plugin data, jsep) of the event answering it."""
        transaction = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[transaction] = future  # before the POST: the event may beat its answer
        message: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            reply = await self.post(f"/janus/{self.session_id}/{handle_id}", message)
            if reply.get("janus") == "success":  # answered synchronously after all
                return self._plugin_data(reply), reply.get("jsep")
            async with asyncio.timeout(PLUGIN_TIMEOUT):
                event = await future
        finally:
            self.pending.pop(transaction, None)
        return self._plugin_data(event), event.get("jsep")

    @staticmethod
    def _plugin_data(reply: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (reply.get("plugindata") or {}).get("data") or {}
        if "error_code" in data:
            raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "")))
        return data

    def spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self.tasks.discard)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            try:
                await self.post(f"/janus/{self.session_id}", {"janus": "keepalive"})
            except Exception as exc:
                logger.warning("keepalive failed: %r", exc)

    async def _long_poll(self) -> None:
        path = f"/janus/{self.session_id}?maxev={LONG_POLL_EVENTS}"
        while True:
            try:
                answer = await asyncio.get_running_loop().run_in_executor(
                    self.poll_executor,
                    self._http,
                    "GET",
                    f"{path}&rid={int(time.time() * 1000)}",
                    None,
                    LONG_POLL_TIMEOUT,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # janus stopping, or a hiccup: try again shortly
                logger.warning("long poll failed: %r", exc)
                await asyncio.sleep(0.5)
                continue
            events = answer if isinstance(answer, list) else [answer]
            if events and events[0].get("janus") == "error":  # e.g. 458: no such session
                logger.error("long poll: %s", events[0].get("error"))
                self.lost.set()
                return
            for event in events:
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "keepalive":
            return
        future = self.pending.get(str(event.get("transaction")))
        if future is not None and kind in ("event", "success", "error") and not future.done():
            if kind == "error":
                error = event.get("error") or {}
                future.set_exception(
                    JanusError(int(error.get("code", 0)), str(error.get("reason", "")))
                )
            else:
                future.set_result(event)
            return
        callback = self.handle_events.get(int(event.get("sender") or 0))
        if callback is not None:
            self.spawn(callback(event))
        elif kind not in ("detached", "hangup", "media", "webrtcup", "slowlink"):
            logger.debug("event for no handle: %s", event)


# --- the node API on top -------------------------------------------------------------------
@dataclass
class Subscription:
    """A peer's subscriber handle: one PeerConnection receiving every feed it subscribed to."""

    handle_id: int
    joined: bool = False  # the "join" went through (later feeds are added by "subscribe")
    feeds: set[str] = field(default_factory=set)
    negotiation_id: str = ""
    answered: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Peer:
    channel: str
    display_name: str
    publisher_handle: int | None = None
    feed_id: str | None = None  # the publisher's VideoRoom participant ID, once published
    # Janus lets subscribers in only once the publisher's PeerConnection is up (before that it
    # answers 428 "No such feed"): set on the publisher handle's webrtcup.
    feed_ready: bool = False
    producers: list[dict[str, Any]] = field(default_factory=list)
    subscription: Subscription | None = None
    subscribe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class Room:
    peers: dict[str, Peer] = field(default_factory=dict)
    created: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JanusNode:
    def __init__(self, channel: str, api: JanusApi, janus_pid: int) -> None:
        self.channel = channel
        self.api = api
        self.janus_pid = janus_pid
        self.layer = get_channel_layer()
        self.rooms: dict[str, Room] = {}
        self.control_handle = 0  # creates and destroys rooms
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.control_handle = await self.api.attach(self._ignore_event)

    def spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A subscription made in the background: the subscriber just never gets an
            # offer, so say why here.
            logger.error("background task failed", exc_info=task.exception())

    async def serve(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            self.spawn(self.handle(message))

    async def handle(self, message: object) -> None:
        try:
            req = parse_request(message)
        except MalformedRequest as exc:
            if exc.reply_to:
                await self.layer.send(
                    exc.reply_to, error_response(exc.request_id, "bad_request", str(exc))
                )
            return
        handler = getattr(self, f"on_{req.method}", None)
        try:
            if handler is None:
                raise ValueError(f"unknown method {req.method}")
            response = ok_response(req.id, await handler(req.data))
        except Exception as exc:
            logger.exception("%s failed", req.method)
            response = error_response(req.id, "error", repr(exc))
        await self.layer.send(req.reply_to, response)

    # --- methods ---
    async def on_ping(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"node": self.channel}

    async def on_dump(self, data: dict[str, Any]) -> dict[str, Any]:
        """sfu.contract.DumpReply's counts (Janus handles as transports), plus `server_pid`."""
        per_room = {name: self._room_counts(room) for name, room in self.rooms.items()}
        totals = {
            key: sum(counts[key] for counts in per_room.values())
            for key in ("peers", "producers", "consumers", "transports")
        }
        return {
            "rooms": len(self.rooms),
            **totals,
            "per_room": per_room,
            "server_pid": self.janus_pid,  # measure this process's CPU, not the adapter's
        }

    @staticmethod
    def _room_counts(room: Room) -> dict[str, int]:
        peers = list(room.peers.values())
        return {
            "peers": len(peers),
            "producers": sum(len(p.producers) for p in peers),
            "consumers": sum(
                len(other.producers)
                for p in peers
                if p.subscription is not None
                for other in peers
                if other.feed_id in p.subscription.feeds
            ),
            "transports": sum(
                (p.publisher_handle is not None) + (p.subscription is not None) for p in peers
            ),
        }

    async def on_join(self, data: dict[str, Any]) -> dict[str, Any]:
        room_name, peer_id = data["room"], data["peer_id"]
        room = self.rooms.setdefault(room_name, Room())
        await self._ensure_room(room_name, room)
        peer = room.peers.get(peer_id)
        if peer is None:
            room.peers[peer_id] = Peer(data["peer_channel"], data.get("display_name", ""))
        else:  # a retried join: keep what the peer has, deliver events to its channel
            peer.channel = data["peer_channel"]
        if self._feeds(room, excluding=peer_id):
            self.spawn(self.subscribe(room_name, peer_id))
        others = [
            {"peer_id": other_id, "display_name": other.display_name, "producers": other.producers}
            for other_id, other in room.peers.items()
            if other_id != peer_id
        ]
        return {"peers": others}

    async def _ensure_room(self, room_name: str, room: Room) -> None:
        async with room.lock:
            if room.created:
                return
            try:
                await self.api.request(
                    self.control_handle, {"request": "create", "room": room_name, **ROOM_OPTIONS}
                )
            except JanusError as exc:
                if exc.code != VIDEOROOM_ROOM_EXISTS:
                    raise
            room.created = True

    async def on_produce(self, data: dict[str, Any]) -> dict[str, Any]:
        room_name, peer_id = data["room"], data["peer_id"]
        room = self.rooms[room_name]
        peer = room.peers[peer_id]
        jsep = {"type": "offer", "sdp": data["sdp"], "trickle": False}
        if peer.publisher_handle is None:
            handle_id = await self.api.attach(
                lambda event: self._publisher_event(room_name, peer_id, event)
            )
            peer.publisher_handle = handle_id
            joined, _ = await self.api.message(
                handle_id,
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room_name,
                    "display": peer.display_name or peer_id,
                },
            )
            feed_id = str(joined["id"])
            request = "publish"
        else:  # a new offer from a publisher: renegotiate its PeerConnection
            handle_id = peer.publisher_handle
            feed_id = str(peer.feed_id)
            request = "configure"
        configured, answer = await self.api.message(handle_id, {"request": request}, jsep)
        if answer is None or answer.get("type") != "answer":
            raise RuntimeError(f"Janus answered {request} without an SDP answer: {configured}")
        check_loopback_sdp(answer["sdp"])
        sources: dict[str, str] = data.get("sources") or {}
        peer.producers = [
            {
                "producer_id": f"{feed_id}:{stream['mid']}",
                "mid": stream["mid"],
                "kind": stream["type"],
                "source": sources.get(stream["mid"], ""),
                "paused": False,
            }
            for stream in configured.get("streams", [])
            if stream.get("type") in ("audio", "video") and not stream.get("disabled")
        ]
        peer.feed_id = feed_id
        # The peers already here get the feed once it is up: see _publisher_event.
        return {"sdp": answer["sdp"], "producers": peer.producers}

    async def _publisher_event(self, room_name: str, peer_id: str, event: dict[str, Any]) -> None:
        """An event Janus sent on its own on a publisher handle."""
        room = self.rooms.get(room_name)
        peer = room.peers.get(peer_id) if room else None
        if room is None or peer is None:
            return
        kind = event.get("janus")
        if kind == "webrtcup":
            peer.feed_ready = True
            # A feed published after subscribers joined: add it to theirs (bench/sfu_relay.py
            # does the same for the peers that are not publishers).
            for other_id, other in room.peers.items():
                if other_id != peer_id and other.feed_id is None:
                    self.spawn(self.subscribe(room_name, other_id))
        elif kind == "hangup":
            logger.info("publisher %s hung up: %s", peer_id, event.get("reason"))
            peer.feed_ready = False

    @staticmethod
    def _feeds(room: Room, excluding: str) -> dict[str, str]:
        """feed ID -> publishing peer, for every feed that is up but `excluding`'s."""
        return {
            p.feed_id: peer_id
            for peer_id, p in room.peers.items()
            if p.feed_id is not None and p.feed_ready and peer_id != excluding
        }

    async def subscribe(self, room_name: str, peer_id: str) -> None:
        """Subscribe `peer_id` to the room's feeds it lacks; send Janus's offer as negotiate."""
        room = self.rooms.get(room_name)
        peer = room.peers.get(peer_id) if room else None
        if room is None or peer is None:
            return  # left meanwhile
        async with peer.subscribe_lock:  # one subscription change per peer at a time
            for attempt in range(1, SUBSCRIBE_ATTEMPTS + 1):
                new = [
                    feed
                    for feed in self._feeds(room, excluding=peer_id)
                    if peer.subscription is None or feed not in peer.subscription.feeds
                ]
                if not new or room.peers.get(peer_id) is not peer:
                    return
                try:
                    await self._subscribe_to(room_name, peer_id, peer, new)
                    return
                except JanusError as exc:
                    # A feed that just went away (its publisher left or hung up): try again
                    # with what is left.
                    if exc.code != VIDEOROOM_NO_SUCH_FEED or attempt == SUBSCRIBE_ATTEMPTS:
                        raise
                    logger.info("subscribe %s (attempt %d): %s", peer_id, attempt, exc)
                    await asyncio.sleep(SUBSCRIBE_RETRY_SECONDS)

    async def _subscribe_to(
        self, room_name: str, peer_id: str, peer: Peer, feeds: list[str]
    ) -> None:
        streams = [{"feed": feed} for feed in feeds]
        subscription = peer.subscription
        if subscription is None:
            handle_id = await self.api.attach(
                lambda event: self._subscriber_event(room_name, peer_id, event)
            )
            subscription = Subscription(handle_id)
            peer.subscription = subscription
            if self.rooms.get(room_name, Room()).peers.get(peer_id) is not peer:
                await self.api.detach(handle_id)  # it left while the handle was attached
                return
        if not subscription.joined:
            data, offer = await self.api.message(
                subscription.handle_id,
                {"request": "join", "ptype": "subscriber", "room": room_name, "streams": streams},
            )
            subscription.joined = True
        else:
            # One renegotiation at a time: wait until the last offer was answered.
            async with asyncio.timeout(PLUGIN_TIMEOUT):
                await subscription.answered.wait()
            data, offer = await self.api.message(
                subscription.handle_id, {"request": "subscribe", "streams": streams}
            )
        subscription.feeds.update(feeds)
        if offer is not None:
            await self._send_offer(room_name, peer_id, subscription, offer, data)

    async def _send_offer(
        self,
        room_name: str,
        peer_id: str,
        subscription: Subscription,
        offer: dict[str, Any],
        data: dict[str, Any],
    ) -> None:
        if offer.get("type") != "offer":
            logger.warning("unexpected jsep %s for subscriber %s", offer.get("type"), peer_id)
            return
        check_loopback_sdp(offer["sdp"])
        room = self.rooms.get(room_name)
        peer = room.peers.get(peer_id) if room else None
        if peer is None:
            return  # left meanwhile
        subscription.negotiation_id = uuid.uuid4().hex
        subscription.answered.clear()
        await self.layer.send(
            peer.channel,
            {
                "type": "sfu.event",
                "room": room_name,
                "peer_id": peer_id,
                "event": "negotiate",
                "data": {
                    "negotiation_id": subscription.negotiation_id,
                    "sdp": offer["sdp"],
                    "consumers": self._consumers(room_name, data),
                },
            },
        )

    def _consumers(self, room_name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The node's ConsumerInfo for each stream Janus put in an offer."""
        room = self.rooms.get(room_name, Room())
        publishers = {p.feed_id: peer_id for peer_id, p in room.peers.items() if p.feed_id}
        consumers = []
        for stream in data.get("streams") or []:
            if stream.get("type") not in ("audio", "video") or not stream.get("active", True):
                continue
            feed = str(stream.get("feed_id", ""))
            consumers.append(
                {
                    "consumer_id": f"{feed}:{stream.get('feed_mid')}>{stream.get('mid')}",
                    "producer_id": f"{feed}:{stream.get('feed_mid')}",
                    "producer_peer_id": publishers.get(feed, ""),
                    "kind": stream["type"],
                    "source": "",
                    "mid": stream.get("mid"),
                    "paused": False,
                    "producer_paused": False,
                }
            )
        return consumers

    async def _subscriber_event(self, room_name: str, peer_id: str, event: dict[str, Any]) -> None:
        """An event Janus sent on its own on a subscriber handle (no pending request)."""
        jsep = event.get("jsep")
        if jsep is None:
            if event.get("janus") == "hangup":
                logger.info("subscriber %s hung up: %s", peer_id, event.get("reason"))
            return
        room = self.rooms.get(room_name)
        peer = room.peers.get(peer_id) if room else None
        if peer is None or peer.subscription is None:
            return
        # An offer Janus made by itself (autoupdate: a feed left): forward it like any other.
        data = (event.get("plugindata") or {}).get("data") or {}
        await self._send_offer(room_name, peer_id, peer.subscription, jsep, data)

    async def _ignore_event(self, event: dict[str, Any]) -> None:
        if event.get("janus") == "hangup":
            logger.info("handle %s hung up: %s", event.get("sender"), event.get("reason"))

    async def on_receiveAnswer(self, data: dict[str, Any]) -> dict[str, Any]:
        peer = self.rooms[data["room"]].peers[data["peer_id"]]
        subscription = peer.subscription
        if subscription is None:
            raise ValueError(f"{data['peer_id']} has no subscription")
        jsep = {"type": "answer", "sdp": data["sdp"], "trickle": False}
        await self.api.message(subscription.handle_id, {"request": "start"}, jsep)
        subscription.answered.set()
        return {}

    async def on_leave(self, data: dict[str, Any]) -> dict[str, Any]:
        room_name = data["room"]
        room = self.rooms.get(room_name)
        if room is None:
            return {}
        peer = room.peers.pop(data["peer_id"], None)
        if peer is not None:
            handles = [peer.publisher_handle]
            if peer.subscription is not None:
                handles.append(peer.subscription.handle_id)
            # Detaching closes the handle's PeerConnection and, for a publisher, its feed.
            await asyncio.gather(*(self.api.detach(h) for h in handles if h is not None))
        if not room.peers and self.rooms.get(room_name) is room:
            self.rooms.pop(room_name)
            with contextlib.suppress(JanusError):
                await self.api.request(
                    self.control_handle, {"request": "destroy", "room": room_name}
                )
        return {}


# --- main ----------------------------------------------------------------------------------
async def start_janus(
    workdir: Path, event_loops: int, log_file: Path, debug_level: int
) -> tuple[asyncio.subprocess.Process, JanusApi]:
    """Start janus with a fresh configuration and wait until its HTTP API answers."""
    if shutil.which("janus") is None:
        raise RuntimeError("janus is not installed: run scripts/ensure-janus.sh")
    shim = build_shim()
    environment = {**os.environ, "LD_PRELOAD": str(shim)}
    for _attempt in range(3):  # the free port may be taken between the check and janus's bind
        port = free_port()
        config = write_configuration(workdir, port, event_loops, log_file, debug_level)
        process = await asyncio.create_subprocess_exec(
            "janus",
            "--config",
            str(config),
            "--configs-folder",
            str(workdir),
            cwd=workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,  # its banner and anything before the log file opens
            stderr=sys.stderr,
            preexec_fn=_die_with_parent,
        )
        api = JanusApi(port)
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT and process.returncode is None:
            try:
                await api.info()
            except Exception:
                await asyncio.sleep(0.1)
                continue
            logger.info(
                "janus pid %d up on 127.0.0.1:%d in %.1f s (event_loops=%d, log %s)",
                process.pid,
                port,
                time.monotonic() - started,
                event_loops,
                log_file,
            )
            return process, api
        api.close()
        if process.returncode is None:
            process.kill()
        await process.wait()
        logger.warning(
            "janus did not start (exit %s); log tail:\n%s", process.returncode, tail(log_file)
        )
    raise RuntimeError(f"janus did not start; see {log_file}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def stop_janus(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)  # janus closes its PeerConnections and exits
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


async def serve(args: argparse.Namespace, workdir: Path, log_file: Path) -> int:
    """Start janus, answer on the channel until SIGTERM/SIGINT or janus's end; the exit status."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    process, api = await start_janus(workdir, args.event_loops, log_file, args.debug_level)
    status = 0
    try:
        await api.create_session()
        node = JanusNode(args.channel, api, process.pid)
        await node.start()
        server = asyncio.create_task(node.serve())
        janus_exit = asyncio.create_task(process.wait())
        stop_wait = asyncio.create_task(stopping.wait())
        session_lost = asyncio.create_task(api.lost.wait())
        watched = {server, janus_exit, stop_wait, session_lost}
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if janus_exit.done():
            logger.error("janus exited with %s; log tail:\n%s", process.returncode, tail(log_file))
            status = 1
        if session_lost.done():
            logger.error("the Janus session is gone; stopping")
            status = 1
        if server.done() and server.exception() is not None:
            logger.error("serving failed: %r", server.exception())
            status = 1
        for task in (*watched, *node.tasks):
            task.cancel()
    finally:
        # The long poll first, so that its end (the session destroyed) is not taken for a
        # failure; its worker thread returns when janus closes the connection.
        for task in list(api.tasks):
            task.cancel()
        await asyncio.gather(*api.tasks, return_exceptions=True)
        await api.destroy_session()
        await stop_janus(process)
        api.close()
    return status


def main() -> int:
    args = parse_args()
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    logger.setLevel(logging.INFO)  # this adapter's own lines are few: start-up, hangups
    workdir = Path(tempfile.mkdtemp(prefix="meet-bench-janus-"))
    log_file = Path(args.log).resolve() if args.log else workdir / "janus.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(serve(args, workdir, log_file))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # the log too, unless --log put it elsewhere


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("channel", help="the channel-layer channel to answer on")
    parser.add_argument(
        "--event-loops",
        type=int,
        default=0,
        help="janus's general.event_loops: N shared media threads (0 = a thread per handle)",
    )
    parser.add_argument("--log", help="janus's log file (default: in the temporary folder)")
    parser.add_argument("--debug-level", type=int, default=4, help="janus's debug_level (0-7)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
