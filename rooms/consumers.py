"""The call's signaling WebSocket (protoo-style; see docs/protocol.md).

Origin checks and session authentication happen in meet/asgi.py before this runs.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

CLOSE_UNAUTHENTICATED = 4401


class SignalingConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        request_id = content.get("id") if isinstance(content, dict) else None
        await self.send_json(
            {
                "response": True,
                "id": request_id,
                "ok": False,
                "errorCode": "not_implemented",
                "errorReason": "signaling is not available yet",
            }
        )
