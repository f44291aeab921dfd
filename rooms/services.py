"""The meetings domain: every change to a meeting goes through here (views, admin, the call's
signaling and Celery tasks call these; none holds business logic of its own).

Emails leave through Celery tasks enqueued with transaction.on_commit, so a rolled-back change
sends nothing and a worker never looks for a row that is not committed yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User, new_calendar_token, validate_time_zone
from rooms import audit
from rooms.access import Actor, can_manage, invitations_of, signed_in
from rooms.app_settings import app_settings
from rooms.emails import send_calendar_email
from rooms.events import send_after_commit
from rooms.models import CancelledOccurrence, Invitation, Meeting, Participant
from rooms.recurrence import next_occurrence, rule_occurrences, validate_end, validate_rrule

MAX_INVITEES = 200
INSTANT_MEETING_LENGTH = timedelta(hours=1)
MAX_MEETING_LENGTH = timedelta(hours=24)


@dataclass
class MeetingDetails:
    """What a host chooses when scheduling or editing a meeting."""

    title: str
    starts_at: datetime
    ends_at: datetime
    time_zone: str = "UTC"
    description: str = ""
    access_policy: str = Meeting.Access.SIGNED_IN
    recurrence: str = ""
    invitee_emails: Sequence[str] = field(default_factory=list)
    co_hosts: Sequence[User] = field(default_factory=list)


def normalize_emails(emails: Iterable[str]) -> list[str]:
    """Lower-cased, de-duplicated, validated; ValidationError names the bad ones."""
    seen: dict[str, None] = {}
    bad: list[str] = []
    for raw in emails:
        email = raw.strip().lower()
        if not email:
            continue
        try:
            validate_email(email)
        except ValidationError:
            bad.append(raw.strip())
            continue
        seen.setdefault(email, None)
    if bad:
        raise ValidationError(
            "Not valid email addresses: %(bad)s", params={"bad": ", ".join(bad[:10])}
        )
    if len(seen) > MAX_INVITEES:
        raise ValidationError(f"At most {MAX_INVITEES} people can be invited.")
    return list(seen)


def check_details(
    details: MeetingDetails, *, new: bool, previous_start: datetime | None = None
) -> None:
    """Validate what the forms also check, so that every caller gets the same rules."""
    errors: dict[str, list[str]] = {}
    if not details.title.strip():
        errors.setdefault("title", []).append("A meeting needs a title.")
    if details.ends_at <= details.starts_at:
        errors.setdefault("ends_at", []).append("The meeting must end after it starts.")
    elif details.ends_at - details.starts_at > MAX_MEETING_LENGTH:
        errors.setdefault("ends_at", []).append("A meeting can last at most 24 hours.")
    start_changed = previous_start is None or details.starts_at != previous_start
    if (new or start_changed) and details.starts_at < timezone.now() - timedelta(minutes=1):
        errors.setdefault("starts_at", []).append("The start is in the past.")
    try:
        validate_time_zone(details.time_zone)
    except ValidationError as exc:
        errors.setdefault("time_zone", []).extend(exc.messages)
    if details.access_policy not in Meeting.Access.values:
        errors.setdefault("access_policy", []).append("Unknown access policy.")
    try:
        validate_rrule(details.recurrence)
        validate_end(details.recurrence, details.starts_at)
    except ValidationError as exc:
        errors.setdefault("recurrence", []).extend(exc.messages)
    try:
        details.invitee_emails = normalize_emails(details.invitee_emails)
    except ValidationError as exc:
        errors.setdefault("invitee_emails", []).extend(exc.messages)
    if errors:
        raise ValidationError(errors)


def _send_calendar_emails(meeting: Meeting, emails: Iterable[str], kind: str) -> None:
    for email in emails:
        transaction.on_commit(partial(send_calendar_email.delay, meeting.pk, email, kind))


# --- create -------------------------------------------------------------------------------


def _new_instant_meeting(host: User, title: str, status: str) -> Meeting:
    now = timezone.now()
    return Meeting.objects.create(
        host=host,
        title=title.strip() or f"{host.display_name}'s meeting",
        # Nominal times: an instant meeting has no time of its own (calendars and the upcoming
        # list do not show one); its link works until it expires unused (Meeting.is_expired).
        starts_at=now,
        ends_at=now + INSTANT_MEETING_LENGTH,
        time_zone=host.time_zone,
        kind=Meeting.Kind.INSTANT,
        status=status,
        access_policy=Meeting.Access.SIGNED_IN,
    )


def create_instant_meeting(host: User, title: str = "") -> Meeting:
    """ "Start an instant meeting": a meeting that is live now, its host on the way in."""
    return _new_instant_meeting(host, title, Meeting.Status.LIVE)


def create_meeting_for_later(host: User, title: str = "") -> Meeting:
    """ "Create a meeting for later": an instant meeting nobody has started, a link to share.
    Its call starts when the first person joins (mark_live), as an instant meeting's next
    call does after the last one ended."""
    return _new_instant_meeting(host, title, Meeting.Status.SCHEDULED)


@transaction.atomic
def schedule_meeting(
    host: User, details: MeetingDetails, *, origin: audit.Origin | str = audit.Origin.PAGE
) -> Meeting:
    """A scheduled meeting with its invitations sent; the co-hosts the host chose are recorded
    in the audit log (`origin`: the layer that asked, the schedule page by default)."""
    check_details(details, new=True)
    meeting = Meeting.objects.create(
        host=host,
        title=details.title.strip(),
        description=details.description.strip(),
        starts_at=details.starts_at,
        ends_at=details.ends_at,
        time_zone=details.time_zone,
        access_policy=details.access_policy,
        recurrence=details.recurrence,
    )
    co_hosts = [user for user in details.co_hosts if user.pk != host.pk]
    meeting.co_hosts.set(co_hosts)
    audit.record_co_host_changes(
        host, meeting, before=(), after=[user.pk for user in co_hosts], origin=origin
    )
    Invitation.objects.bulk_create(
        Invitation(meeting=meeting, email=email) for email in details.invitee_emails
    )
    _send_calendar_emails(meeting, details.invitee_emails, "invitation")
    return meeting


# --- change -------------------------------------------------------------------------------


def _check_manager(actor: Actor, meeting: Meeting) -> None:
    if not can_manage(actor, meeting):
        raise PermissionDenied("Only the host can change this meeting.")


_CALENDAR_FIELDS = (
    "title",
    "description",
    "starts_at",
    "ends_at",
    "time_zone",
    "access_policy",
    "recurrence",
)


@transaction.atomic
def update_meeting(
    actor: Actor,
    meeting: Meeting,
    details: MeetingDetails,
    *,
    origin: audit.Origin | str = audit.Origin.PAGE,
) -> Meeting:
    """Apply the host's changes; when anything changed, bump SEQUENCE, send updates to the
    invitees who stay, invitations to new ones and cancellations to those taken off. Co-host
    changes go to the audit log (`origin`: the layer that asked, the edit page by default)."""
    _check_manager(actor, meeting)
    current = Meeting.objects.select_for_update().get(pk=meeting.pk)
    if current.is_over:
        raise ValidationError("A cancelled, ended or expired meeting cannot be changed.")
    check_details(details, new=False, previous_start=current.starts_at)
    details.title = details.title.strip()
    details.description = details.description.strip()
    changed = [
        name for name in _CALENDAR_FIELDS if getattr(current, name) != getattr(details, name)
    ]
    existing = {invitation.email: invitation for invitation in current.invitations.all()}
    wanted = list(details.invitee_emails)
    added = [email for email in wanted if email not in existing]
    removed = [email for email in existing if email not in wanted]
    co_hosts = {user.pk for user in details.co_hosts if user.pk != current.host_id}
    previous_co_hosts = set(current.co_hosts.values_list("pk", flat=True))
    co_hosts_changed = co_hosts != previous_co_hosts
    if not (changed or added or removed or co_hosts_changed):
        return current
    for name in changed:
        setattr(current, name, getattr(details, name))
    if co_hosts_changed:
        current.co_hosts.set(list(co_hosts))
        audit.record_co_host_changes(
            actor, current, before=previous_co_hosts, after=co_hosts, origin=origin
        )
    if {"starts_at", "time_zone", "recurrence"} & set(changed):
        _forget_stale_cancellations(current)
    if changed or added or removed:
        current.sequence += 1
    current.save()
    if removed:
        _send_calendar_emails(current, removed, "removed")
        current.invitations.filter(email__in=removed).delete()
    Invitation.objects.bulk_create(Invitation(meeting=current, email=email) for email in added)
    if changed:
        kept = [email for email in wanted if email in existing]
        if "starts_at" in changed or "ends_at" in changed or "recurrence" in changed:
            # A new time asks everyone again.
            current.invitations.filter(email__in=kept).update(
                response=Invitation.Response.NEEDS_ACTION, responded_at=None
            )
        _send_calendar_emails(current, kept, "update")
    _send_calendar_emails(current, added, "invitation")
    meeting.refresh_from_db()
    return current


def _forget_stale_cancellations(meeting: Meeting) -> None:
    """After a change of time or rule: occurrences cancelled one by one that the rule no longer
    has are forgotten (they would otherwise come back should the time change back)."""
    stale = [
        row.pk
        for row in meeting.cancelled_occurrences.all()
        if not meeting.recurrence
        or rule_occurrences(meeting, row.starts_at, row.starts_at + timedelta(seconds=1))
        != [row.starts_at]
    ]
    CancelledOccurrence.objects.filter(pk__in=stale).delete()


@transaction.atomic
def cancel_meeting(actor: Actor, meeting: Meeting) -> Meeting:
    _check_manager(actor, meeting)
    current = Meeting.objects.select_for_update().get(pk=meeting.pk)
    if current.status == Meeting.Status.CANCELLED:
        return current
    if current.status == Meeting.Status.LIVE:
        # Those in the call leave it (each connection departs and closes with 4410), as when a
        # host ends it for everyone; nobody may join a cancelled meeting again.
        send_after_commit(current.code, "meetingEnded", {"reason": "cancelled"})
    current.status = Meeting.Status.CANCELLED
    current.sequence += 1
    current.save(update_fields=["status", "sequence", "updated_at"])
    _send_calendar_emails(
        current, current.invitations.values_list("email", flat=True), "cancellation"
    )
    meeting.refresh_from_db()
    return current


@transaction.atomic
def cancel_occurrence(actor: Actor, meeting: Meeting, occurrence_start: datetime) -> Meeting:
    """ "Cancel: this occurrence" of a recurring meeting: the series stays, this one start is
    left out everywhere (rooms.models.CancelledOccurrence: the upcoming list, reminders, the
    .ics's EXDATE, "is the series over"); SEQUENCE + 1; every invitee gets a METHOD:CANCEL for
    that occurrence alone (its RECURRENCE-ID). Only an occurrence still to come can be
    cancelled; cancelling the same one twice changes nothing."""
    _check_manager(actor, meeting)
    current = Meeting.objects.select_for_update().get(pk=meeting.pk)
    if not current.recurrence:
        raise ValidationError("Only a repeating meeting has occurrences to cancel one by one.")
    if current.is_over:
        raise ValidationError("A cancelled, ended or expired meeting cannot be changed.")
    start = occurrence_start.astimezone(UTC)
    if rule_occurrences(current, start, start + timedelta(seconds=1)) != [start]:
        raise ValidationError("The meeting has no occurrence at that time.")
    if start <= timezone.now():
        raise ValidationError("That occurrence has already started.")
    _row, created = CancelledOccurrence.objects.get_or_create(meeting=current, starts_at=start)
    if not created:
        return current
    current.sequence += 1
    current.save(update_fields=["sequence", "updated_at"])
    emails = list(current.invitations.values_list("email", flat=True))
    for email in emails:
        transaction.on_commit(
            partial(
                send_calendar_email.delay,
                current.pk,
                email,
                "occurrence_cancelled",
                start.isoformat(),
            )
        )
    meeting.refresh_from_db()
    return current


def respond_to_invitation(invitation: Invitation, response: str) -> Invitation:
    if response not in Invitation.Response.values or response == Invitation.Response.NEEDS_ACTION:
        raise ValidationError("Answer accepted, declined or tentative.")
    if invitation.meeting.status == Meeting.Status.CANCELLED:
        raise ValidationError("This meeting was cancelled.")
    Invitation.objects.filter(pk=invitation.pk).update(
        response=response, responded_at=timezone.now()
    )
    invitation.refresh_from_db()
    return invitation


def invitation_for(user: Actor, meeting: Meeting) -> Invitation | None:
    person = signed_in(user)
    if person is None:
        return None
    # Only a confirmed address is the invitee's (rooms.access.verified_emails says why).
    return invitations_of(person).filter(meeting=meeting).first()


def reset_calendar_token(user: User) -> str:
    """A new secret for the personal feed; the old URL stops working at once."""
    user.calendar_token = new_calendar_token()
    user.save(update_fields=["calendar_token"])
    return user.calendar_token


# --- call status (the signaling side says when) -----------------------------------------


@transaction.atomic
def mark_live(meeting: Meeting) -> Meeting:
    """Someone is in the call. Scheduled → live; ended → live when an instant meeting's link is
    used again (or a host starts a scheduled one again). An expired or cancelled meeting stays
    as it is (nobody may join it: rooms.access.join_decision)."""
    current = Meeting.objects.select_for_update().get(pk=meeting.pk)
    if current.status in (Meeting.Status.SCHEDULED, Meeting.Status.ENDED):
        current.status = Meeting.Status.LIVE
        current.ended_at = None
        current.save(update_fields=["status", "ended_at", "updated_at"])
        meeting.status, meeting.ended_at = current.status, None
    return current


@transaction.atomic
def mark_ended(meeting: Meeting, *, with_breakout_rooms: bool = False) -> Meeting:
    """The last person left (or a host ended it for everyone): this call is over.

    A recurring meeting goes back to scheduled for its next occurrence. Any other is ended now
    (`ended_at`); for a one-off scheduled meeting that is the end (only a host or co-host may
    start it again: rooms.access.only_moderators_may_restart), while an instant meeting's
    link keeps working, its next call starting with whoever joins, until it goes unused for
    ROOMS_INSTANT_MEETING_EXPIRY_DAYS after this end (Meeting.link_expires_at).

    While people are in the meeting's breakout rooms its call goes on, unless
    `with_breakout_rooms` ("End meeting for all", which ends the rooms' calls as well)."""
    current = Meeting.objects.select_for_update().get(pk=meeting.pk)
    if current.status != Meeting.Status.LIVE:
        return current
    if not with_breakout_rooms and _present_in_breakout_rooms(current):
        # Everyone left the main room for its breakout rooms (rooms.breakouts): the call goes
        # on there, and they come back to it.
        return current
    now = timezone.now()
    upcoming = next_occurrence(current, now + current.duration) if current.recurrence else None
    if upcoming is not None:
        current.status = Meeting.Status.SCHEDULED
        current.save(update_fields=["status", "updated_at"])
    else:
        current.mark_ended()
    meeting.status, meeting.ended_at = current.status, current.ended_at
    parent = current.parent if current.is_breakout else None
    if (
        parent is not None
        and parent.status == Meeting.Status.LIVE
        and not Participant.objects.filter(meeting=parent, left_at__isnull=True).exists()
    ):
        # The last person of the last busy breakout room left, nobody being in the main
        # room: the meeting's call is over too.
        mark_ended(parent)
    return current


def _present_in_breakout_rooms(meeting: Meeting) -> bool:
    return Participant.objects.filter(
        meeting__parent=meeting, meeting__kind=Meeting.Kind.BREAKOUT, left_at__isnull=True
    ).exists()


def expire_unused_links(now: datetime | None = None) -> int:
    """Mark expired every instant meeting whose link went unused for
    ROOMS_INSTANT_MEETING_EXPIRY_DAYS: not in a call, and its last call ended (or, never used,
    it was created) that long ago. Returns how many. The beat task runs it hourly; the join
    page refuses such a link even before (Meeting.is_expired). One conditional UPDATE: a call
    that started meanwhile (live) is left alone."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=app_settings.INSTANT_MEETING_EXPIRY_DAYS)
    unused = Q(ended_at__isnull=False, ended_at__lte=cutoff) | Q(
        ended_at__isnull=True, created_at__lte=cutoff
    )
    return (
        Meeting.objects.filter(
            kind=Meeting.Kind.INSTANT,
            status__in=(Meeting.Status.SCHEDULED, Meeting.Status.ENDED),
        )
        .filter(unused)
        .update(status=Meeting.Status.EXPIRED, updated_at=now)
    )
