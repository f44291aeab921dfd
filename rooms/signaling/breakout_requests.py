"""Breakout rooms on the signaling socket: each request checks its data's types and calls one
function of rooms.breakouts, which decides who may do what, checks names and counts, and sends
the room events. Nothing is decided here (docs/protocol.md, "Breakout rooms").

Two timers live here, because they are the connection's process's to run: the rooms' own
timer (closing them when it runs out) and the closing countdown (moving everyone back when it
is over). Each is a task of its own, not of this connection, so it outlives the host's socket;
clients fall back to moving themselves at the countdown's end should this process go away.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async

from rooms import access, breakouts
from rooms.models import MAX_BREAKOUT_ROOMS, Meeting
from rooms.signaling import protocol
from rooms.signaling.context import ConnectionContext, RequestHandler
from rooms.signaling.protocol import ProtocolError, Request

logger = logging.getLogger(__name__)

# Far more than any call has people: anything longer is refused before anything walks it.
MAX_ASSIGNMENTS = 1000

_timers: set[asyncio.Task[None]] = set()


def breakout_handlers(context: ConnectionContext) -> dict[str, RequestHandler]:
    async def open_breakouts(request: Request) -> dict[str, Any]:
        context.require_joined()
        names = protocol.field(request.data, "rooms")
        assignments = request.data.get("assignments", {})
        timer_seconds = request.data.get("timerSeconds")
        mode = request.data.get("mode", Meeting.BreakoutMode.MOVE)
        # Checked for shape here; the counts (1 to 50) and lengths in rooms.breakouts.
        if (
            not isinstance(names, list)
            or len(names) > 2 * MAX_BREAKOUT_ROOMS
            or not all(isinstance(name, str) for name in names)
        ):
            raise ProtocolError("invalid_data", "rooms must be a list of names")
        checked_assignments = _check_assignments(assignments)
        if timer_seconds is not None and not _is_int(timer_seconds):
            raise ProtocolError("invalid_data", "timerSeconds must be an integer or null")
        if not isinstance(mode, str):
            raise ProtocolError("invalid_data", 'mode must be "move" or "ask"')
        opened = await database_sync_to_async(breakouts.open_breakouts)(
            context.user,
            context.meeting,
            names=names,
            assignments=checked_assignments,
            timer_seconds=timer_seconds,
            mode=mode,
        )
        if opened.timer_seconds:
            _start(_close_when_timer_ends(context.meeting, opened.room_codes, opened.timer_seconds))
        return {"breakouts": opened.state}

    async def assign_breakout(request: Request) -> dict[str, Any]:
        context.require_joined()
        peer_id = protocol.check_peer_id(protocol.field(request.data, "peerId"))
        code = protocol.field(request.data, "code")
        if not isinstance(code, str) or len(code) > protocol.MAX_ID_LENGTH:
            raise ProtocolError("invalid_data", "code must be a breakout room's code")
        state = await database_sync_to_async(breakouts.assign)(
            context.user, context.meeting, peer_id=peer_id, room_code=code
        )
        return {"breakouts": state}

    async def broadcast(request: Request) -> dict[str, Any]:
        context.require_joined()
        text = protocol.field(request.data, "text")
        if not isinstance(text, str):
            raise ProtocolError("invalid_data", "text must be a string")
        return await database_sync_to_async(breakouts.broadcast)(
            context.user, context.meeting, text
        )

    async def close_breakouts(request: Request) -> dict[str, Any]:
        context.require_joined()
        seconds = request.data.get("seconds", 10)
        if not _is_int(seconds):
            raise ProtocolError("invalid_data", "seconds must be an integer")
        closing = await database_sync_to_async(breakouts.close_breakouts)(
            context.user, context.meeting, seconds
        )
        main = await database_sync_to_async(access.governing_meeting)(context.meeting)
        _start(_return_after(main, closing["rooms"], closing["seconds"]))
        return {"seconds": closing["seconds"]}

    async def get_breakouts(request: Request) -> dict[str, Any]:
        context.require_joined()
        state = await database_sync_to_async(breakouts.call_state)(context.meeting)
        return {"breakouts": state}

    return {
        "openBreakouts": open_breakouts,
        "assignBreakout": assign_breakout,
        "broadcastToBreakouts": broadcast,
        "closeBreakouts": close_breakouts,
        "getBreakouts": get_breakouts,
    }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_assignments(value: object) -> dict[str, int] | str:
    if value == breakouts.RANDOM:
        return breakouts.RANDOM
    if not isinstance(value, dict) or len(value) > MAX_ASSIGNMENTS:
        raise ProtocolError(
            "invalid_data", 'assignments must map peer ids to room indexes, or be "random"'
        )
    checked: dict[str, int] = {}
    for peer_id, index in value.items():
        if not _is_int(index):
            raise ProtocolError("invalid_data", "a room index must be an integer")
        checked[protocol.check_peer_id(peer_id)] = index
    return checked


def _start(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _timers.add(task)
    task.add_done_callback(_timers.discard)


async def _return_after(main: Meeting, room_codes: list[str], seconds: int) -> None:
    await asyncio.sleep(seconds)
    try:
        await database_sync_to_async(breakouts.return_everyone)(main, room_codes)
    except Exception:
        logger.exception("moving people back from breakout rooms of %s failed", main.code)


async def _close_when_timer_ends(meeting: Meeting, room_codes: list[str], seconds: int) -> None:
    await asyncio.sleep(seconds)
    try:
        main = await database_sync_to_async(access.governing_meeting)(meeting)
        closing = await database_sync_to_async(breakouts.close_by_timer)(main, room_codes)
    except Exception:
        logger.exception("closing the breakout rooms of %s on time failed", meeting.code)
        return
    if closing is not None:
        await _return_after(main, closing["rooms"], closing["seconds"])
