"""Attendance: who was in each meeting's call, when and for how long, kept after the call.

One AttendanceSession per stay of one browser tab, following its presence row (Participant):
rooms.presence opens it when it lets the tab in (`open_session`, or `resume_session` for a
reconnect within the grace period, which continues the same session) and closes it when the
row leaves (`close_departed`), however the row leaves: a leave, a removal, the grace period
running out, the presence sweep after a web process died. "End meeting for all" closes every
session of the call at once (`end_for_all`), crashed tabs included.

A session's end is when the person really went: the moment their socket dropped for a grace
period that ran out, the last heartbeat of a connection whose web process died (the sweep
comes a minute or so later), else the leave itself.

Sessions are grouped by occurrence: a recurring meeting's occurrence (the one nearest the
call's start), an instant meeting's call (its link is used for call after call), a one-off
scheduled meeting's start. Everyone who joins while a call is on joins that call's occurrence.

The report (`report`) is per occurrence and per person (a signed-in user, or a guest's browser
session): first join, last leave and time in the call summed over their sessions without
counting overlaps twice (two tabs), sorted into invited-and-came, came-uninvited and
invited-did-not-come. The host and co-hosts see it on the meeting page (`page_context`),
download it as CSV (`report_csv`) and receive it by e-mail once the call is over
(`send_attendance_report`, queued by `call_over` when the last person leaves or the call is
ended for all, once per occurrence). Staff read the sessions in the admin.

The browser family is read from the User-Agent with a few lines (`browser_family`): five
families are all the report names, which no parsing library is worth a dependency for.
"""

from __future__ import annotations

import csv
import io
import logging
import smtplib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from allauth.account.models import EmailAddress
from celery import shared_task
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from meet.links import absolute_url
from rooms.access import Actor, signed_in
from rooms.app_settings import app_settings
from rooms.emails import recipient_zone
from rooms.models import (
    AttendanceReportDelivery,
    AttendanceSession,
    Invitation,
    Meeting,
    Participant,
)
from rooms.recurrence import previous_occurrence, upcoming_occurrences
from rooms.selectors import names_by_email
from rooms.templatetags.meeting_format import format_duration

logger = logging.getLogger(__name__)

Browser = AttendanceSession.Browser
Role = Participant.Role


# --- the browser --------------------------------------------------------------------------

# Checked in this order: Edge and Opera say "Chrome" too, Chrome says "Safari", and the iOS
# browsers (all WebKit) name themselves apart.
_BROWSER_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (Browser.EDGE, ("edg/", "edga/", "edgios/", "edge/")),
    (Browser.OPERA, ("opr/", "opera")),
    (Browser.FIREFOX, ("firefox/", "fxios/")),
    (Browser.CHROME, ("chrome/", "chromium/", "crios/")),
    (Browser.SAFARI, ("safari/",)),
)


def browser_family(user_agent: str) -> str:
    """Chrome, Edge, Firefox, Safari, Opera or other, from a User-Agent header."""
    agent = user_agent.lower()
    for family, markers in _BROWSER_MARKERS:
        if any(marker in agent for marker in markers):
            if family == Browser.SAFARI and "version/" not in agent:
                break  # a WebKit app or bot, not Safari itself
            return str(family)
    return str(Browser.OTHER)


# --- recording: called by rooms.presence, under the meeting's lock ------------------------


def occurrence_for_join(meeting: Meeting, now: datetime) -> datetime:
    """The occurrence a join now belongs to: the one of the call that is on (its open
    sessions'), else the one this join starts: a recurring meeting's occurrence nearest now
    (the one on now, or the nearer of the last one's end and the next one's start: early and
    late joins count), an instant meeting's new call (now), a one-off meeting's start."""
    ongoing = (
        AttendanceSession.objects.filter(meeting=meeting, left_at__isnull=True)
        .order_by("-joined_at", "-pk")
        .values_list("occurrence_start", flat=True)
        .first()
    )
    if ongoing is not None:
        return ongoing
    if meeting.is_recurring:
        last = previous_occurrence(meeting, now)
        if last is not None and now < last + meeting.duration:
            return last
        upcoming = upcoming_occurrences(meeting, now, 1)
        following = upcoming[0] if upcoming else None
        if last is None:
            return following or meeting.starts_at
        if following is None or now - (last + meeting.duration) <= following - now:
            return last
        return following
    if meeting.is_instant:
        return now
    return meeting.starts_at


def open_session(
    participant: Participant, user_agent: str = "", joined_at: datetime | None = None
) -> AttendanceSession:
    """A tab came in (a new presence row): its stay begins (at the row's join, or `joined_at`)."""
    user = participant.user
    joined_at = joined_at or participant.joined_at
    return AttendanceSession.objects.create(
        meeting_id=participant.meeting_id,
        occurrence_start=occurrence_for_join(participant.meeting, joined_at),
        participant=participant,
        user=user,
        email=user.email if user is not None else "",
        guest_key="" if user is not None else participant.guest_key,
        is_guest=user is None,
        display_name=participant.display_name,
        role=participant.role,
        browser=browser_family(user_agent),
        joined_at=joined_at,
    )


def resume_session(participant: Participant, user_agent: str = "") -> AttendanceSession:
    """The tab came back within the grace period (the same presence row): the same session
    goes on, with the name and role it has now. A row whose session was closed meanwhile (the
    call was ended for all) starts a new one."""
    session = participant.attendance_sessions.filter(left_at__isnull=True).first()
    if session is None:
        return open_session(participant, user_agent, joined_at=timezone.now())
    session.display_name = participant.display_name
    session.role = participant.role
    session.save(update_fields=["display_name", "role"])
    return session


def renamed(meeting_id: int, peer_id: str, display_name: str) -> None:
    """A guest changed their name in the call: the report shows the latest."""
    AttendanceSession.objects.filter(
        meeting_id=meeting_id,
        left_at__isnull=True,
        participant__peer_id=peer_id,
        participant__left_at__isnull=True,
    ).update(display_name=display_name)


def _gone_at(participant: Participant | None, silent_after: timedelta | None) -> datetime:
    """When the person behind a presence row that has left really went."""
    now = timezone.now()
    if participant is None:
        return now
    left = participant.left_at or now
    if participant.disconnected_at is not None and participant.disconnected_at < left:
        return participant.disconnected_at  # their socket dropped and they never came back
    if silent_after is not None and participant.last_seen_at < left - silent_after:
        return participant.last_seen_at  # their web process died (the sweep let them go)
    return left


def close_departed(meeting_id: int, *, silent_after: timedelta | None = None) -> set[datetime]:
    """The sessions of `meeting_id` whose presence row has left are closed (each once: only
    open ones). `silent_after`, for the rows let go as abandoned (the sweep): how long a
    connection stays silent before it is taken for gone; such a row's stay ended at its last
    heartbeat. Returns the occurrences they were in."""
    sessions = list(
        AttendanceSession.objects.filter(meeting_id=meeting_id, left_at__isnull=True)
        .filter(Q(participant__isnull=True) | Q(participant__left_at__isnull=False))
        .select_related("participant")
    )
    return _close(sessions, lambda session: _gone_at(session.participant, silent_after))


def _close(
    sessions: list[AttendanceSession], end: Callable[[AttendanceSession], datetime]
) -> set[datetime]:
    for session in sessions:
        session.left_at = max(session.joined_at, end(session))
    AttendanceSession.objects.bulk_update(sessions, ["left_at"])
    return {session.occurrence_start for session in sessions}


def end_for_all(meeting: Meeting) -> None:
    """ "End meeting for all": every open session of the call ends now (a tab whose socket
    had dropped, when it dropped), crashed ones included; the report goes out."""
    now = timezone.now()
    sessions = list(
        AttendanceSession.objects.filter(meeting=meeting, left_at__isnull=True).select_related(
            "participant"
        )
    )

    def ended(session: AttendanceSession) -> datetime:
        dropped = session.participant.disconnected_at if session.participant else None
        return dropped if dropped is not None and dropped < now else now

    call_over(meeting, _close(sessions, ended))


def call_over(meeting: Meeting, occurrences: Iterable[datetime]) -> None:
    """The call of these occurrences is over (its last person left, or it was ended for all):
    their reports are e-mailed after ATTENDANCE_REPORT_DELAY_SECONDS, unless the call has
    started again by then (then its next end sends it), once per occurrence."""
    delay = app_settings.ATTENDANCE_REPORT_DELAY_SECONDS
    for start in sorted(set(occurrences)):
        transaction.on_commit(
            partial(
                send_attendance_report.apply_async,
                (meeting.pk, start.isoformat()),
                countdown=delay,
            ),
            robust=True,  # a broker outage must not undo (or fail) the leave that caused it
        )


# --- the report ---------------------------------------------------------------------------

INVITED_CAME = "invited_came"
UNINVITED = "uninvited"
INVITED_ABSENT = "invited_absent"
CATEGORY_LABELS = {
    INVITED_CAME: "Invited, came",
    UNINVITED: "Came, not invited",
    INVITED_ABSENT: "Invited, did not come",
}


@dataclass(frozen=True)
class Attendee:
    """One person who came: a signed-in user (all their tabs), or a guest's browser session."""

    name: str
    email: str
    role: str  # label: Host, Co-host, Participant, Guest
    is_guest: bool
    category: str  # INVITED_CAME or UNINVITED
    response: str  # their invitation's response (label), "" when not invited
    browsers: tuple[str, ...]
    first_join: datetime
    last_leave: datetime | None  # None: still in the call
    total: timedelta
    sessions: int

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS[self.category]


@dataclass(frozen=True)
class Absentee:
    """Someone expected (the host, a co-host, an invitee) who did not come."""

    name: str
    email: str
    role: str  # Host, Co-host, Invitee
    response: str

    category = INVITED_ABSENT

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS[INVITED_ABSENT]


@dataclass(frozen=True)
class OccurrenceReport:
    meeting: Meeting
    occurrence_start: datetime
    invited_came: list[Attendee]
    uninvited: list[Attendee]
    absent: list[Absentee]
    generated_at: datetime = field(default_factory=timezone.now)

    @property
    def attendees(self) -> list[Attendee]:
        return sorted(self.invited_came + self.uninvited, key=lambda a: (a.first_join, a.name))

    @property
    def started_at(self) -> datetime | None:
        return min((a.first_join for a in self.attendees), default=None)

    @property
    def ended_at(self) -> datetime | None:
        """The last leave; None while anyone is still in the call (or nobody came)."""
        leaves = [a.last_leave for a in self.attendees]
        if not leaves or any(leave is None for leave in leaves):
            return None
        return max(leave for leave in leaves if leave is not None)

    @property
    def is_over(self) -> bool:
        return self.ended_at is not None


@dataclass
class _Expected:
    """Someone the meeting expects: matched to who came by account or by address."""

    name: str
    email: str
    role: str
    response: str
    user_id: int | None = None
    came: bool = False


def occurrences(meeting: Meeting) -> list[datetime]:
    """The occurrences (calls) anyone attended, the latest first."""
    starts = (
        AttendanceSession.objects.filter(meeting=meeting)
        .values_list("occurrence_start", flat=True)
        .distinct()
        .order_by("-occurrence_start")
    )
    return list(starts)


def _union_length(intervals: list[tuple[datetime, datetime]]) -> timedelta:
    """The time covered by the intervals, overlaps counted once."""
    total = timedelta()
    current_start: datetime | None = None
    current_end: datetime | None = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_start is not None and current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_start is not None and current_end is not None:
        total += current_end - current_start
    return total


def _person_key(session: AttendanceSession) -> tuple[str, str]:
    if session.user_id is not None:
        return ("user", str(session.user_id))
    if session.email:
        return ("email", session.email.lower())  # the account went; its address stayed
    return ("guest", session.guest_key or f"session-{session.pk}")


def _expected(meeting: Meeting) -> list[_Expected]:
    """The host, the co-hosts and the invitees, in that order."""
    host = meeting.host
    people = [_Expected(host.display_name, host.email.lower(), "Host", "", host.pk)]
    people += [
        _Expected(user.display_name, user.email.lower(), "Co-host", "", user.pk)
        for user in meeting.co_hosts.all()
    ]
    known = {person.email for person in people}
    invitations = [i for i in meeting.invitations.all() if i.email.lower() not in known]
    names = names_by_email(i.email for i in invitations)
    people += [
        _Expected(
            names.get(i.email.lower(), ""),
            i.email.lower(),
            "Invitee",
            Invitation.Response(i.response).label,
        )
        for i in invitations
    ]
    return people


def _addresses(user_ids: set[int]) -> dict[int, set[str]]:
    """Each user's confirmed addresses and account address, lower-cased (an invitation is
    theirs by a confirmed address: rooms.access.verified_emails)."""
    found: dict[int, set[str]] = {user_id: set() for user_id in user_ids}
    for user_id, email in User.objects.filter(pk__in=user_ids).values_list("pk", "email"):
        found[user_id].add(email.lower())
    rows = (
        EmailAddress.objects.filter(user_id__in=user_ids, verified=True)
        .annotate(email_lower=Lower("email"))
        .values_list("user_id", "email_lower")
    )
    for user_id, email in rows:
        found[user_id].add(email)
    return found


def report(
    meeting: Meeting, occurrence_start: datetime, now: datetime | None = None
) -> OccurrenceReport:
    """The attendance of one occurrence. Someone still in the call counts until `now`."""
    now = now or timezone.now()
    sessions = list(
        AttendanceSession.objects.filter(meeting=meeting, occurrence_start=occurrence_start)
        .select_related("user")
        .order_by("joined_at", "pk")
    )
    groups: dict[tuple[str, str], list[AttendanceSession]] = {}
    for session in sessions:
        groups.setdefault(_person_key(session), []).append(session)
    expected = _expected(meeting)
    by_user = {person.user_id: person for person in expected if person.user_id is not None}
    by_email = {person.email: person for person in expected}
    addresses = _addresses({s.user_id for s in sessions if s.user_id is not None})

    came: list[Attendee] = []
    for (kind, _value), stays in groups.items():
        latest = stays[-1]
        match: _Expected | None = None
        if kind == "user" and latest.user_id is not None:
            match = by_user.get(latest.user_id) or next(
                (by_email[a] for a in sorted(addresses.get(latest.user_id, ())) if a in by_email),
                None,
            )
        elif kind == "email":
            match = by_email.get(latest.email.lower())
        if match is not None:
            match.came = True
        leaves = [stay.left_at for stay in stays]
        came.append(
            Attendee(
                name=latest.display_name,
                email=latest.email,
                role=Role(latest.role).label,
                is_guest=latest.is_guest,
                category=INVITED_CAME if match is not None else UNINVITED,
                response=match.response if match is not None else "",
                browsers=tuple(
                    dict.fromkeys(Browser(stay.browser).label for stay in stays)  # in order, once
                ),
                first_join=stays[0].joined_at,
                last_leave=None if None in leaves else max(x for x in leaves if x is not None),
                total=_union_length([(stay.joined_at, stay.left_at or now) for stay in stays]),
                sessions=len(stays),
            )
        )
    came.sort(key=lambda a: (a.first_join, a.name))
    return OccurrenceReport(
        meeting=meeting,
        occurrence_start=occurrence_start,
        invited_came=[a for a in came if a.category == INVITED_CAME],
        uninvited=[a for a in came if a.category == UNINVITED],
        absent=[
            Absentee(person.name, person.email, person.role, person.response)
            for person in expected
            if not person.came
        ],
        generated_at=now,
    )


# --- who sees it --------------------------------------------------------------------------


def can_see_report(user: Actor, meeting: Meeting) -> bool:
    """The host and the co-hosts (staff read it in the admin)."""
    person = signed_in(user)
    if person is None:
        return False
    return meeting.host_id == person.pk or meeting.co_hosts.filter(pk=person.pk).exists()


def parse_occurrence(meeting: Meeting, text: str | None) -> datetime | None:
    """The occurrence an ISO start names, if anyone attended it (else None)."""
    if not text:
        return None
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        return None
    if start.tzinfo is None:
        return None
    found = (
        AttendanceSession.objects.filter(meeting=meeting, occurrence_start=start)
        .values_list("occurrence_start", flat=True)
        .first()
    )
    return found


def chosen_occurrence(meeting: Meeting, text: str | None) -> datetime | None:
    """The occurrence `?occurrence=` names (None when it names none anyone attended); the
    latest attended when it names none at all."""
    if text:
        return parse_occurrence(meeting, text)
    return next(iter(occurrences(meeting)), None)


def page_context(user: Actor, meeting: Meeting, occurrence: str | None) -> dict[str, object]:
    """What the meeting page adds to show its "Attendance" section (host and co-hosts only,
    once anyone has been in its call): the occurrences anyone attended, and the report of the
    one asked for (the latest by default, and for an occurrence nobody attended)."""
    if not can_see_report(user, meeting):
        return {"attendance": None}
    starts = occurrences(meeting)
    if not starts:
        return {"attendance": None}
    chosen = chosen_occurrence(meeting, occurrence) or starts[0]
    return {"attendance": {"occurrences": starts, "report": report(meeting, chosen)}}


# --- CSV ----------------------------------------------------------------------------------

CSV_HEADER = (
    "Name",
    "Email",
    "Attendance",
    "Role",
    "Guest",
    "Invitation response",
    "Browser",
    "First join",
    "Last leave",
    "Total minutes",
    "Time in call",
    "Sessions",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets a quote first."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _csv_time(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else ""


def report_csv(result: OccurrenceReport) -> str:
    """One row per person (who came, then who did not), times in the meeting's zone."""
    zone = ZoneInfo(result.meeting.time_zone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for a in result.invited_came + result.uninvited:
        row: tuple[object, ...] = (
            a.name,
            a.email,
            a.category_label,
            a.role,
            "yes" if a.is_guest else "no",
            a.response,
            ", ".join(a.browsers),
            _csv_time(a.first_join, zone),
            _csv_time(a.last_leave, zone),
            round(a.total.total_seconds() / 60),
            format_duration(a.total),
            a.sessions,
        )
        writer.writerow([safe_cell(cell) for cell in row])
    for absent in result.absent:
        row = (absent.name, absent.email, absent.category_label, absent.role, "no")
        row += (absent.response, "", "", "", 0, "", 0)
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()


def csv_filename(result: OccurrenceReport) -> str:
    local = result.occurrence_start.astimezone(ZoneInfo(result.meeting.time_zone))
    return f"attendance-{result.meeting.code}-{local:%Y-%m-%d-%H%M}.csv"


# --- the e-mail ---------------------------------------------------------------------------


def report_recipients(meeting: Meeting) -> list[str]:
    """The host and the co-hosts."""
    emails = [meeting.host.email, *(user.email for user in meeting.co_hosts.all())]
    return list(dict.fromkeys(email for email in emails if email))


def report_email(result: OccurrenceReport, email: str) -> EmailMultiAlternatives:
    """The report to one host or co-host: text, HTML, and the CSV attached. Times in the
    recipient's zone (rooms.emails.recipient_zone)."""
    meeting = result.meeting
    zone = recipient_zone(email, meeting)

    def local(moment: datetime | None) -> str:
        return f"{moment.astimezone(zone):%H:%M}" if moment else "still in the call"

    def rows(people: list[Attendee]) -> list[dict[str, str]]:
        return [
            {
                "name": a.name + (" (guest)" if a.is_guest else ""),
                "first_join": local(a.first_join),
                "last_leave": local(a.last_leave),
                "total": format_duration(a.total),
            }
            for a in people
        ]

    when = result.occurrence_start.astimezone(zone)
    context = {
        "meeting": meeting,
        "when": f"{when:%A %d %B %Y, %H:%M} ({zone.key})",
        "report": result,
        "invited_came": rows(result.invited_came),
        "uninvited": rows(result.uninvited),
        "absent": result.absent,
        "detail_url": absolute_url(meeting.get_absolute_url()),
    }
    message = EmailMultiAlternatives(
        subject=f"Attendance report: {meeting.title} @ {context['when']}",
        body=render_to_string("rooms/email/attendance_report.txt", context),
        to=[email],
    )
    message.attach_alternative(
        render_to_string("rooms/email/attendance_report.html", context), "text/html"
    )
    message.attach(csv_filename(result), report_csv(result), "text/csv")
    return message


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError),
    retry_backoff=True,
    max_retries=5,
)
def send_attendance_report(meeting_id: int, occurrence: str) -> int:
    """The report of one occurrence to the host and co-hosts, once: not while its call is on
    again (its next end queues this again), and only by the run that claims it (the
    AttendanceReportDelivery row). Returns how many were sent."""
    meeting = Meeting.objects.select_related("host").filter(pk=meeting_id).first()
    if meeting is None:
        return 0
    start = datetime.fromisoformat(occurrence)
    sessions = AttendanceSession.objects.filter(meeting=meeting, occurrence_start=start)
    if not sessions.exists() or sessions.filter(left_at__isnull=True).exists():
        return 0
    try:
        with transaction.atomic():
            delivery = AttendanceReportDelivery.objects.create(
                meeting=meeting, occurrence_start=start
            )
    except IntegrityError:
        return 0  # sent already, or being sent
    try:
        result = report(meeting, start)
        recipients = report_recipients(meeting)
        for email in recipients:
            report_email(result, email).send()
    except Exception:
        delivery.delete()  # unclaimed: the retry sends it
        raise
    delivery.sent_at = timezone.now()
    delivery.save(update_fields=["sent_at"])
    logger.info("attendance report of %s %s sent to %d", meeting.code, occurrence, len(recipients))
    return len(recipients)
