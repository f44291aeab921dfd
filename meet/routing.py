"""WebSocket routes."""

from __future__ import annotations

from django.urls import path

from rooms.consumers import SignalingConsumer

websocket_urlpatterns = [
    path("ws/rooms/<str:code>/", SignalingConsumer.as_asgi()),
]
