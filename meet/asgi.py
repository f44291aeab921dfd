"""ASGI entry point: HTTP through Django, WebSocket through Channels' URL router.

WebSockets pass the Origin check (meet.security.SameOriginWebSocketValidator: the same host
and port, or CSRF_TRUSTED_ORIGINS) and the session-based
AuthMiddlewareStack before any consumer sees them. For HTTP and WebSocket alike, the client's
address comes from proxy headers only when the peer is one of MEET_TRUSTED_PROXIES
(meet.security.TrustedProxyMiddleware); otherwise it is the peer's.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from meet.routing import websocket_urlpatterns  # noqa: E402
from meet.security import SameOriginWebSocketValidator, TrustedProxyMiddleware  # noqa: E402

application = TrustedProxyMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": SameOriginWebSocketValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    ),
    settings.MEET_TRUSTED_PROXIES,
)
