"""A publisher's packet arrival times come from the kernel, not from when the event loop gets
round to them: a busy loop must not look like network delay to the REMB estimator."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from typing import Any

from sfu import hooks

GAP_SECONDS = 0.1


class Collecting(asyncio.DatagramProtocol):
    """An aioice StunProtocol's part that the hook uses: its transport and its callbacks."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.received: list[tuple[bytes, float]] = []  # (data, kernel arrival, ms)
        self.got = asyncio.Event()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((bytes(data), getattr(data, "arrival_ms", None)))
        self.got.set()

    def error_received(self, exc: Exception) -> None:
        raise AssertionError(exc)


async def _warm_up(protocol: Collecting, sender: socket.socket, address: Any) -> None:
    """Until a datagram held back by a blocked loop keeps the time it arrived."""
    for _ in range(50):
        protocol.received.clear()
        protocol.got.clear()
        sender.sendto(b"warm", address)
        time.sleep(0.02)  # noqa: ASYNC251 (the loop must not read it yet)
        await asyncio.wait_for(protocol.got.wait(), 5)
        _, arrival = protocol.received[0]
        if arrival is not None and (time.time() + 2208988800) * 1000 - arrival >= 15:
            protocol.received.clear()
            return
    raise AssertionError("the kernel never stamped a datagram on arrival")


async def test_datagrams_carry_the_kernels_receive_time_while_the_loop_was_busy() -> None:
    loop = asyncio.get_running_loop()
    _transport, protocol = await loop.create_datagram_endpoint(
        Collecting, local_addr=("127.0.0.1", 0)
    )
    try:
        assert hooks._timestamp_datagrams(protocol)
        address = protocol.transport.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            # Linux switches receive timestamping on for the whole host with a deferred static
            # key: until that has happened, a datagram is stamped when it is read. Wait for it.
            await _warm_up(protocol, sender, address)
            # The loop is blocked for the whole burst (as when forwarding a key frame to many
            # viewers): it reads all three only afterwards.
            for index in range(3):
                sender.sendto(bytes([index]), address)
                time.sleep(GAP_SECONDS)  # noqa: ASYNC251 -- blocking the loop is the point
            while len(protocol.received) < 3:
                protocol.got.clear()
                await asyncio.wait_for(protocol.got.wait(), 5)
        arrivals = [arrival for _, arrival in protocol.received]
        assert [data for data, _ in protocol.received] == [b"\x00", b"\x01", b"\x02"]
        assert all(arrival is not None for arrival in arrivals)
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        # The kernel saw them GAP_SECONDS apart (aiortc's clock would say ~0 ms apart).
        assert all(GAP_SECONDS * 1000 * 0.8 <= gap <= GAP_SECONDS * 1000 * 3 for gap in gaps), gaps
        # On aiortc's clock (ms since 1900), close to now.
        now_ms = (time.time() + 2208988800) * 1000
        assert abs(now_ms - arrivals[-1]) < 5000
    finally:
        protocol.transport.close()
