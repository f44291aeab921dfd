"""The chat requests on the signaling socket: post a message and read the history. chat.services
owns chat (docs/chat-and-moderation.md); this only names the author and maps refusals to error
responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError

from chat import services as chat
from rooms.signaling.context import ConnectionContext, RequestHandler
from rooms.signaling.protocol import ProtocolError, Request

Result = TypeVar("Result")


def chat_handlers(context: ConnectionContext) -> dict[str, RequestHandler]:
    async def chat_message(request: Request) -> dict[str, Any]:
        peer_id = context.require_joined()
        author = chat.ChatAuthor(
            display_name=context.display_name,
            user=context.user,
            guest_key=context.guest_key_if_guest,
            peer_id=peer_id,
        )

        def post() -> dict[str, Any]:
            message = chat.post_message(
                context.meeting,
                author=author,
                client_id=request.data.get("clientId"),
                text=request.data.get("text"),
            )
            return chat.message_dict(message)

        return {"message": await _chat_call(post)}

    async def chat_history(request: Request) -> dict[str, Any]:
        context.require_joined()

        def read() -> list[dict[str, Any]]:
            messages = chat.history(context.meeting, since_id=request.data.get("sinceId"))
            return [chat.message_dict(message) for message in messages]

        return {"messages": await _chat_call(read)}

    return {"chatMessage": chat_message, "chatHistory": chat_history}


async def _chat_call(function: Callable[[], Result]) -> Result:
    try:
        return await database_sync_to_async(function)()
    except ValidationError as exc:
        raise ProtocolError(str(exc.code or "chat_error"), " ".join(exc.messages)) from None
