"""The shapes the browser sees for what the SFU and presence know: contract 2's snake_case
turned into contract 1's camelCase, field by field."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def ice_servers_for_browsers() -> list[dict[str, Any]]:
    from sfu.ice import ice_servers_from_urls

    servers = []
    for server in ice_servers_from_urls(list(settings.SFU_ICE_SERVERS)):
        entry: dict[str, Any] = {"urls": server.urls}
        if server.username:
            entry["username"] = server.username
        if server.credential:
            entry["credential"] = server.credential
        servers.append(entry)
    return servers


def peer_list(
    participants: list[Any], own_peer_id: str, sfu_join: dict[str, Any]
) -> list[dict[str, Any]]:
    """Everyone present but oneself, with their producers as the SFU's join reported them."""
    producers_by_peer: dict[str, list[dict[str, Any]]] = {}
    for peer in sfu_join.get("peers", []) if isinstance(sfu_join.get("peers"), list) else []:
        if isinstance(peer, dict) and isinstance(peer.get("peer_id"), str):
            producers_by_peer[peer["peer_id"]] = [
                {
                    "producerId": p.get("producer_id"),
                    "kind": p.get("kind"),
                    "source": p.get("source"),
                    "paused": bool(p.get("paused", False)),
                }
                for p in peer.get("producers", [])
                if isinstance(p, dict)
            ]
    return [
        {
            "peerId": participant.peer_id,
            "displayName": participant.display_name,
            "role": participant.role,
            "producers": producers_by_peer.get(participant.peer_id, []),
        }
        for participant in participants
        if participant.peer_id != own_peer_id
    ]


def consumer_for_client(consumer: dict[str, Any]) -> dict[str, Any]:
    return {
        "consumerId": consumer.get("consumer_id"),
        "producerId": consumer.get("producer_id"),
        "peerId": consumer.get("producer_peer_id"),
        "kind": consumer.get("kind"),
        "source": consumer.get("source"),
        "mid": consumer.get("mid"),
        "paused": bool(consumer.get("paused", False)),
        "producerPaused": bool(consumer.get("producer_paused", False)),
    }
