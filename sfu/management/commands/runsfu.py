"""`python manage.py runsfu [--node NAME]`: run one SFU node (one per core)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from django.core.management.base import BaseCommand

from sfu.node import SfuNodeServer


class Command(BaseCommand):
    help = "Run one SFU media node."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--node",
            default=os.environ.get("SFU_NODE_NAME") or f"{socket.gethostname()}-1",
            help="Node name, unique across the deployment (default: HOSTNAME-1).",
        )

    def handle(self, *args: Any, node: str, **options: Any) -> None:
        asyncio.run(SfuNodeServer(node).run())
