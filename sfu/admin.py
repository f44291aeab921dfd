from django.contrib import admin

from sfu.models import RoomPlacement, SfuNode
from sfu.registry import liveness_cutoff


@admin.register(SfuNode)
class SfuNodeAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "host",
        "pid",
        "alive",
        "load",
        "capacity",
        "room_count",
        "peer_count",
        "last_heartbeat",
    ]
    readonly_fields = [f.name for f in SfuNode._meta.fields]

    @admin.display(boolean=True)
    def alive(self, node: SfuNode) -> bool:
        return not node.stopped and node.last_heartbeat >= liveness_cutoff()


@admin.register(RoomPlacement)
class RoomPlacementAdmin(admin.ModelAdmin):
    list_display = ["room", "node", "placed_at"]
    list_select_related = ["node"]
