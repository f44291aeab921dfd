"""`python manage.py runsfu [--node NAME]`: run one SFU node (one per core)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from django.core.management.base import BaseCommand

from sfu.node import SfuNodeServer


def default_node_name() -> str:
    if os.environ.get("SFU_NODE_NAME"):
        return os.environ["SFU_NODE_NAME"]
    # honcho names concurrent instances "sfu.1", "sfu.2", ...: stable across restarts.
    instance = os.environ.get("HONCHO_PROCESS_NAME", "sfu.1").rpartition(".")[2] or "1"
    return f"{socket.gethostname()}-sfu{instance}"


class Command(BaseCommand):
    help = "Run one SFU media node."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--node",
            default=default_node_name(),
            help="Node name, unique across the deployment (default: SFU_NODE_NAME, else "
            "HOSTNAME-sfuN with N the honcho instance number).",
        )

    def handle(self, *args: Any, node: str, **options: Any) -> None:
        asyncio.run(SfuNodeServer(node).run())
