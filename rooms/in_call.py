"""Who is in the call, as the pre-join page says it ("Ana and Bo are in this call"), as Meet's
does before "Join now".

Names are shown only to people who may enter directly: a guest who has to ask to join learns
nothing about who is inside until someone lets them in (the lobby's own screen says that
someone will). Each person is named once, however many tabs they have in the call, and the
viewer is not named to themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from rooms import access, presence
from rooms.models import Meeting

# Names spelled out before "and N more" (Meet names two, then counts).
NAMED_AT_MOST = 2


@dataclass(frozen=True)
class InCall:
    names: list[str]  # in join order, at most NAMED_AT_MOST + the rest counted
    others: int  # people in the call beyond `names`
    summary: str  # the sentence the page shows

    def as_json(self) -> dict[str, object]:
        return {"names": self.names, "others": self.others, "summary": self.summary}


def names_in_call(meeting: Meeting, *, viewer: access.Actor) -> list[str]:
    """The display names of the people present in the call, one per person (a person's tabs
    share their account or guest key), in join order, the viewer left out."""
    viewer_user = access.signed_in(viewer)
    seen: set[tuple[str, object]] = set()
    names: list[str] = []
    for participant in presence.present_participants(meeting.pk):
        if participant.user_id is not None:
            if viewer_user is not None and participant.user_id == viewer_user.pk:
                continue
            person: tuple[str, object] = ("user", participant.user_id)
        else:
            person = ("guest", participant.guest_key or participant.peer_id)
        if person in seen:
            continue
        seen.add(person)
        names.append(participant.display_name)
    return names


def summary(names: list[str]) -> InCall:
    """The sentence for these names: "No one else is here", "Ana is in this call", "Ana and
    Bo are in this call", "Ana, Bo and 3 more are in this call"."""
    count = len(names)
    shown = names[:NAMED_AT_MOST] if count > NAMED_AT_MOST + 1 else names
    others = count - len(shown)
    if count == 0:
        sentence = "No one else is here."
    elif count == 1:
        sentence = f"{names[0]} is in this call."
    elif others == 0:
        sentence = f"{', '.join(shown[:-1])} and {shown[-1]} are in this call."
    else:
        sentence = f"{', '.join(shown)} and {others} more are in this call."
    return InCall(names=shown, others=others, summary=sentence)


def for_viewer(viewer: access.Actor, meeting: Meeting) -> InCall | None:
    """What the pre-join page tells this viewer about who is in the call: None for someone
    who may not enter directly (refused, or must ask to join) and when no call is on."""
    decision = access.join_decision(viewer, meeting)
    if not decision.allowed or decision.needs_lobby:
        return None
    if meeting.status != Meeting.Status.LIVE:
        return None
    return summary(names_in_call(meeting, viewer=viewer))
