"""The screens a call ends on (issue 12.5), as in Meet: one screen per way out, each with the
actions that can work, for signed-in people and guests alike.

The server decides which one: the join page asks `join_page_screen` (the call's own join
decision: rooms.access.join_decision, then rooms.signaling.admission.refusal_on_page, the same
checks the call makes at `join`) and shows that screen instead of a pre-join whose "Join now"
could not work. The call client shows the others (leaving, a removal or an end while in the
call, a refusal at join, the lobby's answer) with the same words: the page hands it `SCREENS`
(json_script "call-end-screens"), and static/js/call/end-states.js picks the key and the
actions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.contrib.sessions.backends.base import SessionBase

from rooms import access
from rooms.access import Actor
from rooms.models import Meeting
from rooms.signaling import admission


@dataclass(frozen=True)
class EndScreen:
    key: str
    title: str
    detail: str = ""


SCREENS: dict[str, EndScreen] = {
    screen.key: screen
    for screen in (
        EndScreen("left", "You left the meeting"),
        EndScreen(
            "removed",
            "You've been removed from the meeting",
            "Someone in the call removed you. You can't rejoin this call.",
        ),
        EndScreen(
            "ended", "This meeting has ended", "Only its host or a co-host can start it again."
        ),
        EndScreen("ended_for_all", "The host ended the meeting for everyone"),
        EndScreen("you_ended", "You ended the meeting for everyone"),
        EndScreen("cancelled", "This meeting was cancelled", "Its link no longer works."),
        EndScreen(
            "locked",
            "This meeting is locked",
            "Nobody new can join until the host unlocks it. Open the link again then.",
        ),
        EndScreen(
            "denied", "You can't join this call", "Someone in the call denied your request to join."
        ),
        EndScreen(
            "lobby_timeout",
            "No one responded to your request to join",
            "Nobody in the call let you in. You can ask again, or try again later.",
        ),
        EndScreen("not_allowed", "You can't join this call", "This meeting is not open to you."),
        EndScreen("signed_out", "You're signed out", "Sign in again to join."),
        EndScreen(
            "replaced", "You joined from another tab", "This call is open in another window."
        ),
        EndScreen("failed", "You lost your connection to the call", "Check your network."),
    )
}

# The call's refusals at join (rooms.signaling.admission) that the join page shows at once.
# "lobby" is not one: the pre-join is where a person asks to join.
REFUSAL_SCREENS = {"meeting_ended": "ended", "removed": "removed", "meeting_locked": "locked"}


def join_page_screen(
    meeting: Meeting, user: Actor, session: SessionBase | None
) -> EndScreen | None:
    """The end screen the meeting's join page shows this person instead of the pre-join, or
    None: the pre-join (join, or ask to join). A cancelled meeting says so to anyone with its
    link; a meeting the policy does not let them into is not this module's (the view's 404 or
    sign-in), nor is an expired link (its own page)."""
    decision = access.join_decision(user, meeting)
    if decision.reason == "cancelled":
        return SCREENS["cancelled"]
    if not decision.allowed:
        return None
    refusal = admission.refusal_on_page(meeting, user, session)
    if refusal is None:
        return None
    key = REFUSAL_SCREENS.get(refusal.code)
    return SCREENS[key] if key else None


def client_screens() -> dict[str, dict[str, str]]:
    """Every screen's words for the call client (json_script)."""
    return {key: asdict(screen) for key, screen in SCREENS.items()}
