"""Meetings, their invitations and the reminders already sent for them.

Times are stored in UTC (USE_TZ); `time_zone` is the zone the host scheduled in, which a
recurring meeting's occurrences follow across DST changes.
"""

from __future__ import annotations

import secrets
import string
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.models import validate_time_zone
from meet.links import absolute_url
from rooms.app_settings import app_settings
from rooms.recurrence import RecurrencePreset, describe

JOIN_CODE_REGEX = r"[a-z]{3}-[a-z]{4}-[a-z]{3}"
_CODE_LETTERS = string.ascii_lowercase


def new_join_code() -> str:
    """A Meet-shaped code, abc-defg-hij: 26**10 (about 1.4e14) codes, drawn from a CSPRNG."""
    groups = (3, 4, 3)
    return "-".join("".join(secrets.choice(_CODE_LETTERS) for _ in range(n)) for n in groups)


def new_ical_uid() -> str:
    return f"{uuid.uuid4()}@meet"


class Meeting(models.Model):
    class Status(models.TextChoices):
        """SCHEDULED: nobody is in the call yet (or, for a recurring meeting, until the next
        occurrence). LIVE: someone is in the call. ENDED: the last call ended; a one-off
        scheduled meeting is then over, an instant meeting's link still works (its next call
        starts when someone joins). EXPIRED: an instant meeting's link went unused for
        ROOMS_INSTANT_MEETING_EXPIRY_DAYS and no longer works. CANCELLED: by its host."""

        SCHEDULED = "scheduled", "Scheduled"
        LIVE = "live", "Live"
        ENDED = "ended", "Ended"
        EXPIRED = "expired", "Link expired"
        CANCELLED = "cancelled", "Cancelled"

    class Kind(models.TextChoices):
        """How the meeting was made: scheduled for a time (the schedule form), or instant ("New
        meeting": started now, or created for later), whose link works whenever it is used, as
        in Meet, until it expires unused."""

        SCHEDULED = "scheduled", "Scheduled"
        INSTANT = "instant", "Instant"
        # A breakout room of a meeting's call (rooms.breakouts): a child meeting with its own
        # code, SFU router, presence and chat; `parent` is the meeting, `title` the room's name.
        BREAKOUT = "breakout", "Breakout room"

    class BreakoutMode(models.TextChoices):
        """How a breakout room's assigned people get there: moved at once, or asked to join."""

        MOVE = "move", "Move people"
        ASK = "ask", "Ask people to join"

    class Access(models.TextChoices):
        INVITEES = "invitees", "Only invited people"
        SIGNED_IN = "signed_in", "Anyone signed in with the link"
        GUESTS = "guests", "Anyone with the link; guests wait for the host to admit them"

    Recurrence = RecurrencePreset

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    host = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hosted_meetings"
    )
    co_hosts = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="co_hosted_meetings"
    )
    code = models.CharField(
        max_length=12, unique=True, default=new_join_code, editable=False, db_index=True
    )
    starts_at = models.DateTimeField(default=timezone.now, db_index=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    access_policy = models.CharField(
        max_length=16, choices=Access.choices, default=Access.SIGNED_IN
    )
    locked = models.BooleanField(default=False)
    # The host's "Let people send reactions" switch (rooms.together.set_reactions_enabled).
    reactions_enabled = models.BooleanField(default=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.SCHEDULED, db_index=True
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SCHEDULED)
    recurrence = models.CharField(
        max_length=200, blank=True, default="", help_text="An RFC 5545 RRULE, e.g. FREQ=WEEKLY."
    )
    # Calendar identity: the UID never changes; SEQUENCE goes up on every change we send.
    ical_uid = models.CharField(max_length=100, unique=True, default=new_ical_uid, editable=False)
    sequence = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Breakout rooms only (kind BREAKOUT, rooms.breakouts): the meeting the room belongs to;
    # how assigned people are sent there; when the room closes (None while it is open; a time
    # in the future while its closing countdown runs). Kept after closing with its chat.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="breakout_rooms"
    )
    breakout_mode = models.CharField(
        max_length=8, choices=BreakoutMode.choices, blank=True, default=""
    )
    breakout_closes_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="rooms_meeting_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.code})"

    def get_absolute_url(self) -> str:
        return reverse("rooms:detail", args=[self.code])

    @property
    def join_path(self) -> str:
        return f"/{self.code}"

    @property
    def join_url(self) -> str:
        """The join link where no request is at hand (emails, Celery); pages use
        `join_url_for(request)`. Both through meet.links."""
        return absolute_url(self.join_path)

    def join_url_for(self, request: HttpRequest | None) -> str:
        return absolute_url(self.join_path, request)

    @property
    def is_ended(self) -> bool:
        return self.status == self.Status.ENDED

    @property
    def is_cancelled(self) -> bool:
        return self.status == self.Status.CANCELLED

    @property
    def is_recurring(self) -> bool:
        return bool(self.recurrence)

    @property
    def is_instant(self) -> bool:
        return self.kind == self.Kind.INSTANT

    @property
    def is_breakout(self) -> bool:
        return self.kind == self.Kind.BREAKOUT

    @property
    def last_used_at(self) -> datetime | None:
        """When the link was last used: the end of its last call, or its creation if nobody has
        joined yet; None while someone is in the call (it is in use now)."""
        if self.status == self.Status.LIVE:
            return None
        return self.ended_at or self.created_at

    @property
    def link_expires_at(self) -> datetime | None:
        """When an instant meeting's link stops working: ROOMS_INSTANT_MEETING_EXPIRY_DAYS after
        its last use (each call pushes it back). None for a scheduled meeting (its own rules
        apply), a meeting in a call now, and one cancelled or already expired."""
        if not self.is_instant or self.status not in (self.Status.SCHEDULED, self.Status.ENDED):
            return None
        last_used = self.last_used_at
        if last_used is None:  # not saved yet
            return None
        return last_used + timedelta(days=app_settings.INSTANT_MEETING_EXPIRY_DAYS)

    @property
    def is_expired(self) -> bool:
        """The link no longer works: marked expired by the clean-up task, or past its expiry
        already (the task runs hourly; the join page must not wait for it)."""
        if self.status == self.Status.EXPIRED:
            return True
        expires = self.link_expires_at
        return expires is not None and timezone.now() >= expires

    @property
    def is_over(self) -> bool:
        """Nothing more happens to the meeting: cancelled, its link expired, or a one-off
        scheduled meeting that ended. An instant meeting's ended call is only its latest one."""
        if self.status == self.Status.CANCELLED or self.is_expired:
            return True
        return self.status == self.Status.ENDED and not self.is_instant

    @property
    def state_label(self) -> str:
        """The status in words for the meeting's pages ("Call ended", "Link expired" ...)."""
        if self.is_expired:
            return self.Status.EXPIRED.label
        if self.is_instant and self.status == self.Status.SCHEDULED:
            return "Not started"
        if self.is_instant and self.status == self.Status.ENDED:
            return "Call ended"
        return self.get_status_display()

    @property
    def recurrence_label(self) -> str:
        """What a calendar app would say ("Weekly on Tuesday, until 15 Dec 2026"); "" when the
        meeting does not repeat."""
        return describe(self)

    @property
    def excluded_starts(self) -> list[datetime]:
        """Starts of the occurrences cancelled one by one (CancelledOccurrence), which every
        expansion of the rule leaves out (rooms.recurrence). Uses a prefetch when there is one."""
        if not self.recurrence or self.pk is None:
            return []
        return [row.starts_at for row in self.cancelled_occurrences.all()]

    @property
    def duration(self) -> timedelta:
        if self.ends_at is None:
            return timedelta(hours=1)
        return self.ends_at - self.starts_at

    def mark_ended(self) -> None:
        """Status ended now (the caller holds the row lock; see rooms.services.mark_ended)."""
        self.status = self.Status.ENDED
        self.ended_at = timezone.now()
        self.save(update_fields=["status", "ended_at", "updated_at"])


class Invitation(models.Model):
    class Response(models.TextChoices):
        NEEDS_ACTION = "needs-action", "Awaiting response"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        TENTATIVE = "tentative", "Maybe"

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="invitations")
    # Lower-cased. Not a foreign key: people are invited before they have an account, and
    # matched to one by email whenever it matters.
    email = models.EmailField()
    response = models.CharField(
        max_length=16, choices=Response.choices, default=Response.NEEDS_ACTION
    )
    responded_at = models.DateTimeField(null=True, blank=True)
    invited_at = models.DateTimeField(auto_now_add=True)
    # Calendar state: the SEQUENCE and method of the last calendar email this person got.
    last_sent_sequence = models.IntegerField(null=True, blank=True)
    last_sent_method = models.CharField(max_length=16, blank=True, default="")
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                "meeting", Lower("email"), name="rooms_invitation_unique_email_per_meeting"
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.meeting.code}"


class CancelledOccurrence(models.Model):
    """One occurrence of a recurring meeting its host cancelled ("This occurrence"): left out of
    every expansion (rooms.recurrence), written as an EXDATE in calendar files
    (rooms.calendar), cancelled for the invitees by rooms.services.cancel_occurrence."""

    meeting = models.ForeignKey(
        Meeting, on_delete=models.CASCADE, related_name="cancelled_occurrences"
    )
    # The occurrence's original start (UTC), as the rule expands it: its RECURRENCE-ID.
    starts_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "starts_at"], name="rooms_cancelled_occurrence_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.meeting.code} cancelled on {self.starts_at:%Y-%m-%d %H:%M}"


class ReminderDelivery(models.Model):
    """One reminder for one occurrence to one person, claimed (inserted) before it is sent:
    the unique constraint is what makes a retried task or a second beat send nothing."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="reminders")
    occurrence_start = models.DateTimeField()
    email = models.EmailField()
    claimed_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurrence_start", "email"]
        verbose_name_plural = "reminder deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "occurrence_start", "email"],
                name="rooms_reminder_once_per_occurrence_and_email",
            )
        ]

    def __str__(self) -> str:
        return f"reminder {self.meeting.code} {self.occurrence_start:%Y-%m-%d %H:%M} {self.email}"


# --- Moderation (rooms/moderation.py) ---------------------------------------------------------


class Removal(models.Model):
    """Someone a moderator removed from a meeting: refused at every later join
    (rooms.moderation.is_removed) until re-admitted, which deletes the row."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="removals")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    guest_key = models.CharField(max_length=64, blank=True, default="")
    display_name = models.CharField(max_length=100, blank=True, default="")
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    removed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "user"],
                condition=models.Q(user__isnull=False),
                name="rooms_removal_unique_user",
            ),
            models.UniqueConstraint(
                fields=["meeting", "guest_key"],
                condition=models.Q(user__isnull=True),
                name="rooms_removal_unique_guest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name or self.user or 'guest'} removed from {self.meeting}"


class LobbyRequest(models.Model):
    """Someone waiting to be let in ("Ask to join"), and what a moderator decided."""

    class State(models.TextChoices):
        """WAITING until a moderator decides (ADMITTED, DENIED), the person withdraws it
        (CANCELLED: "Cancel", or their waiting tab closed) or nobody answers within
        ROOMS_LOBBY_WAIT_SECONDS (EXPIRED). "End meeting for all" denies the waiting ones."""

        WAITING = "waiting", "Waiting"
        ADMITTED = "admitted", "Admitted"
        DENIED = "denied", "Denied"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Timed out"

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="lobby_requests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    guest_key = models.CharField(max_length=64, blank=True, default="")
    display_name = models.CharField(max_length=100)
    peer_id = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["meeting", "state"], name="rooms_lobby_meeting_state")]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.get_state_display()}) for {self.meeting}"


# --- presence in the call (rooms.presence) ----------------------------------------


class Participant(models.Model):
    """One browser tab (peer) in a meeting's call, from join to leave.

    Rows with `left_at` unset are who is present now (a peer whose socket dropped stays
    present, `disconnected_at` set, for the reconnect grace period; one whose connection
    stopped refreshing `last_seen_at` is swept out); older rows are the attendance record.
    Written only by rooms.presence.
    """

    class Role(models.TextChoices):
        """Who the person is in this meeting's call (rooms.access.call_role decides)."""

        HOST = "host", "Host"
        COHOST = "cohost", "Co-host"
        PARTICIPANT = "participant", "Participant"
        GUEST = "guest", "Guest"

    meeting = models.ForeignKey(
        "rooms.Meeting", on_delete=models.CASCADE, related_name="participants"
    )
    peer_id = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="call_participations",
    )
    # A guest's stable, non-secret id (never the session key itself); empty for users.
    guest_key = models.CharField(max_length=64, blank=True, default="")
    is_guest = models.BooleanField(default=False)
    display_name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PARTICIPANT)
    # The signaling consumer's channel, so a reconnect can close a half-open old socket.
    channel_name = models.CharField(max_length=200, blank=True, default="")
    joined_at = models.DateTimeField(default=timezone.now)
    # Refreshed by the connection every PRESENCE_HEARTBEAT_SECONDS while it is open: a present
    # participant it stops moving for belongs to a web process that died (the presence sweep).
    last_seen_at = models.DateTimeField(default=timezone.now)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    # When this peer raised its hand (None: not raised). Present rows with it set, in this
    # order, are the meeting's hand queue; written only by rooms.together.
    hand_raised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["joined_at", "pk"]
        indexes = [
            models.Index(fields=["meeting", "left_at"], name="participant_present_idx"),
            # The sweep reads every present row of every meeting; the attendance record grows
            # without bound, so it needs an index of the present rows alone. Not on
            # last_seen_at: the heartbeat then changes no indexed column (PostgreSQL can keep
            # those frequent updates HOT).
            models.Index(
                fields=["meeting"],
                condition=Q(left_at__isnull=True),
                name="participant_present_rows_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "peer_id"],
                condition=models.Q(left_at__isnull=True),
                name="one_present_participant_per_peer",
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_name} in {self.meeting_id}"

    @property
    def is_present(self) -> bool:
        return self.left_at is None


# --- attendance (rooms.attendance) ---------------------------------------------------------


class AttendanceSession(models.Model):
    """One stay of one browser tab in a meeting's call, kept after the call: the attendance
    record (rooms.attendance reads it into the host's report).

    Opened when presence lets the tab in (rooms.presence.enter) and closed when its
    Participant row leaves, however it leaves: a leave, a removal, the end of the call for all,
    the reconnect grace period running out, or the presence sweep after a crash. A reconnect
    within the grace period resumes the same Participant row, so it continues the same session.
    Written only by rooms.attendance.
    """

    class Browser(models.TextChoices):
        """The browser family, read from the User-Agent (rooms.attendance.browser_family)."""

        CHROME = "chrome", "Chrome"
        EDGE = "edge", "Edge"
        FIREFOX = "firefox", "Firefox"
        SAFARI = "safari", "Safari"
        OPERA = "opera", "Opera"
        OTHER = "other", "Other"

    meeting = models.ForeignKey(
        Meeting, on_delete=models.CASCADE, related_name="attendance_sessions"
    )
    # Which occurrence (a recurring meeting's), or which call (an instant meeting's), this
    # stay belongs to: the report is per occurrence. A one-off scheduled meeting's start.
    occurrence_start = models.DateTimeField()
    # The presence row it follows while the tab is in the call.
    participant = models.ForeignKey(
        Participant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attendance_sessions",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attendance_sessions",
    )
    # The signed-in person's address when they joined (kept if the account goes).
    email = models.EmailField(blank=True, default="")
    # A guest's stable, non-secret id (as Participant.guest_key); empty for users.
    guest_key = models.CharField(max_length=64, blank=True, default="")
    is_guest = models.BooleanField(default=False)
    display_name = models.CharField(max_length=100)
    role = models.CharField(
        max_length=16, choices=Participant.Role.choices, default=Participant.Role.PARTICIPANT
    )
    browser = models.CharField(max_length=16, choices=Browser.choices, default=Browser.OTHER)
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["joined_at", "pk"]
        indexes = [
            models.Index(fields=["meeting", "occurrence_start"], name="attendance_occurrence_idx"),
            models.Index(
                fields=["meeting"],
                condition=Q(left_at__isnull=True),
                name="attendance_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} in {self.meeting_id} at {self.joined_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> timedelta | None:
        if self.left_at is None:
            return None
        return self.left_at - self.joined_at


class AttendanceReportDelivery(models.Model):
    """The attendance report of one occurrence, claimed (inserted) before it is e-mailed to the
    host and co-hosts: the unique constraint makes it go out once per occurrence, whatever
    number of last-leaves, ends for all and retried tasks ask for it."""

    meeting = models.ForeignKey(
        Meeting, on_delete=models.CASCADE, related_name="attendance_reports"
    )
    occurrence_start = models.DateTimeField()
    claimed_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurrence_start"]
        verbose_name_plural = "attendance report deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "occurrence_start"],
                name="rooms_attendance_report_once_per_occurrence",
            )
        ]

    def __str__(self) -> str:
        return f"attendance report {self.meeting_id} {self.occurrence_start:%Y-%m-%d %H:%M}"


# --- the audit log (rooms.audit) -----------------------------------------------------------


class AuditLogIsAppendOnly(Exception):
    """Raised by any attempt through the ORM to change or delete an AuditEntry."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    """Refuses bulk changes and deletions, so the default manager (which the admin, views and
    shell sessions use) cannot rewrite history. Deleting a meeting or a user still nulls the
    entry's foreign key: Django's deletion collector goes through `_base_manager`, a plain
    manager, on purpose (the entry keeps the code and names it snapshotted)."""

    def update(self, **kwargs: object) -> int:
        raise AuditLogIsAppendOnly("Audit entries cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("Audit entries cannot be deleted.")

    delete.queryset_only = True  # type: ignore[attr-defined]  # as Django's own delete


class AuditEntry(models.Model):
    """One moderation or administration action: who did what to whom, when, and from where.

    Append-only as far as the application goes: `save` of an existing row, `delete`, and the
    queryset's `update` and `delete` raise AuditLogIsAppendOnly, and the admin shows entries
    read-only. This is not tamper-proofing: whoever can write the database (a DBA, a raw SQL
    session, a migration) can still change or delete rows, and `_base_manager` is a plain
    manager so that deleting a meeting or user can null the foreign keys. Every field a reader
    needs is a text snapshot, so an entry stays meaningful after its meeting, actor or target
    is deleted. Written only by rooms.audit.record, inside the action's own transaction.
    """

    class Action(models.TextChoices):
        LOBBY_ADMIT = "lobby_admit", "Admitted from the lobby"
        LOBBY_DENY = "lobby_deny", "Denied entry"
        MUTE = "mute", "Asked to mute"
        REMOVE = "remove", "Removed from the meeting"
        READMIT = "readmit", "Re-admitted"
        LOCK = "lock", "Locked the meeting"
        UNLOCK = "unlock", "Unlocked the meeting"
        GUESTS_ALLOWED = "guests_allowed", "Let guests ask to join"
        GUESTS_REFUSED = "guests_refused", "Stopped guests asking to join"
        END_FOR_ALL = "end_for_all", "Ended the call for everyone"
        CHAT_DELETE = "chat_delete", "Deleted a chat message"
        # Recording does not exist yet: the names are reserved so that the log's vocabulary
        # (and its admin filter) does not change when it comes. Nothing records them today.
        RECORDING_START = "recording_start", "Started recording"
        RECORDING_STOP = "recording_stop", "Stopped recording"
        RECORDING_DELETE = "recording_delete", "Deleted a recording"
        COHOST_ADD = "cohost_add", "Made co-host"
        COHOST_REMOVE = "cohost_remove", "No longer co-host"
        HOST_CHANGE = "host_change", "Changed the host"

    class Origin(models.TextChoices):
        """Which layer the action came through; the caller says, the domain never guesses."""

        CALL = "call", "In the call"
        ADMIN = "admin", "Admin"
        TASK = "task", "Background task"
        PAGE = "page", "Meeting page"

    meeting = models.ForeignKey(
        Meeting, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    # The join code when it happened: what identifies the meeting once it is deleted.
    meeting_code = models.CharField(max_length=12, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The actor's name and address then (empty for a task, which has no person behind it).
    actor_name = models.CharField(max_length=300, blank=True, default="")
    action = models.CharField(max_length=32, choices=Action.choices)
    # Whom or what it was done to, in words with its ids ("Pat <pat@example.org> (user 12)",
    # "Visitor (guest)", "message 41 by Pat"); empty for the meeting itself.
    target = models.CharField(max_length=300, blank=True, default="")
    origin = models.CharField(max_length=8, choices=Origin.choices)
    # A few ids and counts (rooms.audit.MAX_DETAILS_LENGTH characters of JSON at most).
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["meeting", "-created_at"], name="audit_meeting_newest")]

    def __str__(self) -> str:
        who = self.actor_name or "System"
        return f"{self.created_at:%Y-%m-%d %H:%M} {who}: {self.get_action_display()}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit entries cannot be changed.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("Audit entries cannot be deleted.")


# --- polls (rooms.polls) --------------------------------------------------------------------

MAX_POLL_QUESTION_LENGTH = 300
MAX_POLL_OPTION_LENGTH = 100
MIN_POLL_OPTIONS = 2
MAX_POLL_OPTIONS = 10


class Poll(models.Model):
    """A question a host or co-host asks in a meeting's call, with MIN_POLL_OPTIONS to
    MAX_POLL_OPTIONS options, single choice. Kept with the meeting after the call (its page
    shows the results). Written only by rooms.polls."""

    meeting = models.ForeignKey("rooms.Meeting", on_delete=models.CASCADE, related_name="polls")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    question = models.CharField(max_length=MAX_POLL_QUESTION_LENGTH)
    # Anonymous: nobody, moderators included, ever sees who voted for what.
    anonymous = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Counts up with every change to the results, under the poll's row lock: results sent by
    # different processes may reach a client in either order, and it keeps the newest.
    revision = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["meeting", "created_at"], name="poll_meeting_created")]

    def __str__(self) -> str:
        return self.question

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class PollOption(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="options")
    # 0-based: the `optionIndex` a vote names.
    position = models.PositiveSmallIntegerField()
    text = models.CharField(max_length=MAX_POLL_OPTION_LENGTH)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "position"], name="poll_option_position")
        ]

    def __str__(self) -> str:
        return self.text


class PollVote(models.Model):
    """One person's choice in one poll: a signed-in user (across their tabs) or a guest (by
    guest key). Voting again while the poll is open changes this row, so each person counts
    once, which the two conditional unique constraints hold even across processes."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="votes")
    option = models.ForeignKey(PollOption, on_delete=models.CASCADE, related_name="votes")
    voter_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    voter_guest_key = models.CharField(max_length=64, blank=True, default="")
    # The name shown in the call when the vote was cast (people rename themselves mid-call).
    voter_name = models.CharField(max_length=100)
    voted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["voted_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["poll", "voter_user"],
                condition=Q(voter_user__isnull=False),
                name="one_poll_vote_per_user",
            ),
            models.UniqueConstraint(
                fields=["poll", "voter_guest_key"],
                condition=~Q(voter_guest_key=""),
                name="one_poll_vote_per_guest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter_name}: {self.option_id}"

    @property
    def by_guest(self) -> bool:
        return self.voter_user_id is None and bool(self.voter_guest_key)


# --- breakout rooms (rooms.breakouts) --------------------------------------------------------

MAX_BREAKOUT_ROOMS = 50
MAX_BREAKOUT_NAME_LENGTH = 60


class BreakoutAssignment(models.Model):
    """One person's place in one breakout room: a signed-in user or a guest key (as removals
    name people), so that a reconnect or a late join of the main room finds it again. Written
    only by rooms.breakouts; kept after the rooms close (the room's `breakout_closes_at` says
    whether it still counts)."""

    meeting = models.ForeignKey(
        Meeting, on_delete=models.CASCADE, related_name="breakout_assignments"
    )
    breakout = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    guest_key = models.CharField(max_length=64, blank=True, default="")
    display_name = models.CharField(max_length=100, blank=True, default="")
    assigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["assigned_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["breakout", "user"],
                condition=models.Q(user__isnull=False),
                name="rooms_breakout_assignment_unique_user",
            ),
            models.UniqueConstraint(
                fields=["breakout", "guest_key"],
                condition=models.Q(user__isnull=True),
                name="rooms_breakout_assignment_unique_guest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name or self.user or 'guest'} in {self.breakout}"
