"""`python manage.py runsfu [--node NAME]`: run one SFU node (one per core)."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from typing import Any

import uvloop
from django.core.management.base import BaseCommand, CommandParser

from sfu.app_settings import app_settings
from sfu.node import SfuNodeServer


def default_node_name() -> str:
    if app_settings.NODE_NAME:
        return app_settings.NODE_NAME
    # honcho names concurrent instances "sfu.1", "sfu.2", ...: stable across restarts.
    instance = os.environ.get("HONCHO_PROCESS_NAME", "sfu.1").rpartition(".")[2] or "1"
    return f"{socket.gethostname()}-sfu{instance}"


class Command(BaseCommand):
    help = "Run one SFU media node."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--node",
            default=default_node_name(),
            help="Node name, unique across the deployment (default: SFU_NODE_NAME, else "
            "HOSTNAME-sfuN with N the honcho instance number).",
        )

    def handle(self, *args: Any, node: str, **options: Any) -> None:
        server = SfuNodeServer(node)
        # Everything loaded so far (Django, aiortc, av: ~125,000 objects) lives as long as the
        # process. A full collection walks it all (≈ 40 ms here), stalling every packet in
        # flight; frozen, those objects are skipped and a full pass takes microseconds.
        gc.collect()
        gc.freeze()
        if app_settings.EVENT_LOOP == "uvloop":
            uvloop.run(server.run())
        else:
            asyncio.run(server.run())
