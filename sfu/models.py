"""Where SFU nodes and room placements are recorded (shared by every machine via the DB)."""

from __future__ import annotations

from django.db import models


class SfuNode(models.Model):
    """One `runsfu` process. Alive while its heartbeat is recent."""

    name = models.CharField(max_length=80, unique=True)
    channel = models.CharField(max_length=100, help_text="Channel-layer name it listens on.")
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    capacity = models.PositiveIntegerField(help_text="Forwarded streams it accepts at most.")
    load = models.PositiveIntegerField(default=0, help_text="Forwarded streams now.")
    room_count = models.PositiveIntegerField(default=0)
    peer_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField(db_index=True)
    stopped = models.BooleanField(
        default=False,
        help_text=(
            "Out of placement: it shut down cleanly, or a caller found it unresponsive "
            "(its next heartbeat clears this)."
        ),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "SFU node"

    def __str__(self) -> str:
        return self.name


class RoomPlacement(models.Model):
    """Which node hosts a room's media. Each room lives on exactly one node."""

    room = models.CharField(max_length=64, unique=True)
    node = models.ForeignKey(SfuNode, on_delete=models.CASCADE, related_name="placements")
    placed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["room"]

    def __str__(self) -> str:
        return f"{self.room} on {self.node}"
