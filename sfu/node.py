"""One SFU node: the asyncio process behind `manage.py runsfu`.

It listens on its own channel (`sfu.<node>`; channels_redis must have exactly one receiver
per channel name), registers in the database, heartbeats, and answers requests. Handlers are
looked up by `SfuMethod` (sfu/contract.py); a malformed, unknown or failing request gets an
error response and the node carries on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from sfu import ice, registry, selftest
from sfu.app_settings import app_settings
from sfu.channel_api import MalformedRequest, error_response, ok_response, parse_request
from sfu.collection_watch import CollectionWatch, freeze_start_up, thaw
from sfu.contract import PingReply, SfuMethod
from sfu.engine import EngineError, MediaEngine
from sfu.handlers import Data, Handler, media_handlers

logger = logging.getLogger(__name__)


class SfuNodeServer:
    def __init__(self, name: str, capacity: int | None = None) -> None:
        self.name = name
        self.channel = registry.channel_for(name)
        self.capacity = capacity if capacity is not None else app_settings.NODE_CAPACITY
        self.layer = get_channel_layer()
        self.engine = MediaEngine(
            emit=self._emit_event,
            release_room=self._release_room,
            estimate_downlinks=app_settings.DOWNLINK_ESTIMATE,
        )
        self.handlers: dict[SfuMethod, Handler] = {
            SfuMethod.PING: self._ping,
            **media_handlers(self.engine),
        }
        self._stopping = asyncio.Event()
        self._request_tasks: set[asyncio.Task[None]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.collections = CollectionWatch()  # slow garbage collections, logged

    # --- life cycle ----------------------------------------------------------------------
    async def run(self) -> None:
        # Fail loudly before registering if the aiortc hooks the forwarder needs have moved.
        await selftest.run_selftest()
        ice.install_listen_ips()
        self.collections.install()
        freeze_start_up()
        await sync_to_async(registry.register_node)(self.name, self.capacity)
        logger.info("SFU node %s listening on channel %s", self.name, self.channel)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        heartbeat = self._heartbeat_task = asyncio.create_task(self._heartbeat_forever())
        receiver = asyncio.create_task(self._receive_forever())
        await self._stopping.wait()
        heartbeat.cancel()
        receiver.cancel()
        await asyncio.gather(heartbeat, receiver, return_exceptions=True)
        await self.close()
        self.collections.remove()
        thaw()
        await sync_to_async(registry.mark_stopped)(self.name)
        logger.info("SFU node %s stopped", self.name)

    def stop(self) -> None:
        self._stopping.set()

    def stop_heartbeat(self) -> None:
        """Stop heartbeating but keep serving: what a hung node looks like to the registry."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()

    async def close(self) -> None:
        """Release media resources: every peer's transports, producers and consumers."""
        await self.engine.close()

    def current_load(self) -> registry.NodeLoad:
        counts = self.engine.dump()
        return registry.NodeLoad(
            load=self.engine.forwarded_streams(),
            room_count=counts["rooms"],
            peer_count=counts["peers"],
        )

    async def _emit_event(self, channel: str, message: dict[str, Any]) -> None:
        # Signed with the node's name: after a room moved, the web side drops what the old
        # node still sends.
        await self.layer.send(channel, {**message, "node": self.name})

    async def _release_room(self, room: str) -> None:
        try:
            await sync_to_async(registry.release_room)(room, self.name)
        except Exception:
            logger.exception("could not release room %s", room)

    async def _heartbeat_forever(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except Exception:
                logger.exception("heartbeat failed; retrying")
            await asyncio.sleep(app_settings.HEARTBEAT_SECONDS)

    async def heartbeat(self) -> None:
        """Tell the registry this node lives; if it had been taken for dead meanwhile, close
        the rooms it held (they moved to other nodes)."""
        read_at = time.monotonic()
        load = self.current_load()
        if not await sync_to_async(registry.record_heartbeat)(self.name, load):
            return
        closed = await self.engine.close_rooms(created_before=read_at)
        if closed:
            logger.warning(
                "SFU node %s: rooms moved to other nodes while this one was unresponsive, "
                "closed here: %s",
                self.name,
                ", ".join(sorted(closed)),
            )

    async def _receive_forever(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("channel layer receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            task = asyncio.create_task(self.handle_message(message))
            # Keep a reference: the loop holds tasks only weakly.
            self._request_tasks.add(task)
            task.add_done_callback(self._request_tasks.discard)

    # --- requests ------------------------------------------------------------------------
    async def handle_message(self, message: object) -> None:
        try:
            request = parse_request(message)
        except MalformedRequest as exc:
            logger.warning("malformed request: %s", exc)
            if exc.reply_to:
                await self._reply(
                    exc.reply_to, error_response(exc.request_id, "bad_request", str(exc))
                )
            return
        handler = self._handler_for(request.method)
        if handler is None:
            await self._reply(
                request.reply_to,
                error_response(request.id, "unknown_method", f"unknown method {request.method!r}"),
            )
            return
        try:
            data = await handler(request.data)
        except EngineError as exc:
            response = error_response(request.id, exc.code, exc.reason)
        except Exception:
            logger.exception("request %s failed", request.method)
            response = error_response(request.id, "internal_error", "the SFU node failed")
        else:
            response = ok_response(request.id, data)
        await self._reply(request.reply_to, response)

    async def _reply(self, channel: str, response: dict[str, Any]) -> None:
        try:
            await self.layer.send(channel, response)
        except Exception:
            logger.exception("could not reply on %s", channel)

    def _handler_for(self, name: str) -> Handler | None:
        try:
            method = SfuMethod(name)
        except ValueError:
            return None
        return self.handlers.get(method)

    async def _ping(self, data: Data) -> PingReply:
        return {"node": self.name}
