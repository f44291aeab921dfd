"""Byte relay between a TCP port and a unix socket (see netns.py). Prints "ready" once listening.

python tcp_unix_relay.py unix-to-tcp SOCKET_PATH HOST PORT   # listen on unix, dial TCP
python tcp_unix_relay.py tcp-to-unix HOST PORT SOCKET_PATH   # listen on TCP, dial unix
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

Dial = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def handler(dial: Dial) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await dial()
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    return handle


async def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "unix-to-tcp":
        path, host, port = argv[1], argv[2], int(argv[3])
        server = await asyncio.start_unix_server(
            handler(lambda: asyncio.open_connection(host, port)), path=path
        )
    elif mode == "tcp-to-unix":
        host, port, path = argv[1], int(argv[2]), argv[3]
        server = await asyncio.start_server(
            handler(lambda: asyncio.open_unix_connection(path)), host=host, port=port
        )
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1:]))
