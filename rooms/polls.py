"""Polls in the call (issue 16, item 4; the requests are rooms.signaling.poll_requests).

A host or co-host (rooms.moderation.check_can_moderate) asks a question with 2 to 10 options;
everyone in the call answers with one choice. What each side sees:

- `pollCreated {poll}` goes to the whole room: the question and options, never counts.
- While the poll is open, the live counts (`pollResults`) go to moderators only (the room
  event's audience), and for a named poll, who voted for what. Others see their own choice.
- `closePoll` sends `pollClosed {poll}` with the counts to everyone; never the voters.
- An anonymous poll's voters are stored (one vote per person needs it) but never leave this
  module: not in a notification, a response, or the meeting page, to anyone.

One vote per person (a signed-in user across their tabs, or a guest key): voting again while
the poll is open changes one's vote, as Meet allows; a closed poll refuses votes. Each change of
the results bumps the poll's `revision` under its row lock, and clients keep the results with
the highest revision (two processes' notifications may arrive in either order).

Rate limits: a person changes their votes at most VOTES_PER_WINDOW times in
VOTE_WINDOW_SECONDS (each change is a notification to every moderator), counted in the shared
cache as reactions are; a meeting has at most MAX_OPEN_POLLS open at once and MAX_POLLS in all.

The synchronous functions use the ORM: async callers go through database_sync_to_async.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from accounts.models import User
from chat import services as chat_services
from rooms import moderation
from rooms.access import Actor, signed_in
from rooms.events import MODERATORS, send_after_commit
from rooms.models import (
    MAX_POLL_OPTION_LENGTH,
    MAX_POLL_OPTIONS,
    MAX_POLL_QUESTION_LENGTH,
    MIN_POLL_OPTIONS,
    Meeting,
    Poll,
    PollOption,
    PollVote,
)
from rooms.together import TogetherDenied, TogetherError, participant_in_call

POLL_CREATED = "pollCreated"
POLL_RESULTS = "pollResults"
POLL_CLOSED = "pollClosed"

MAX_OPEN_POLLS = 10
MAX_POLLS = 100
VOTES_PER_WINDOW = 10
VOTE_WINDOW_SECONDS = 10

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class PollError(TogetherError):
    """The request cannot be carried out (`invalid_data`, `unknown_poll`, `unknown_option`,
    `poll_closed`, `too_many_polls`): the error response's code and reason."""


class PollDenied(TogetherDenied):
    """Refused for who the actor is (`removed`, `not_moderator`) or how fast they go
    (`too_many_votes`)."""


@dataclass(frozen=True)
class Voter:
    """Who votes: a signed-in user or a guest key, and the name the call shows for them."""

    user: User | None
    guest_key: str
    name: str


# --- checks ---------------------------------------------------------------------------------


def clean_question(value: str) -> str:
    question = _CONTROL_CHARACTERS.sub(" ", value).strip()
    if not question:
        raise PollError("The question must not be empty.", code="invalid_data")
    if len(question) > MAX_POLL_QUESTION_LENGTH:
        raise PollError(
            f"The question is limited to {MAX_POLL_QUESTION_LENGTH} characters.",
            code="invalid_data",
        )
    return question


def clean_options(values: list[str]) -> list[str]:
    if not MIN_POLL_OPTIONS <= len(values) <= MAX_POLL_OPTIONS:
        raise PollError(
            f"A poll has {MIN_POLL_OPTIONS} to {MAX_POLL_OPTIONS} options.", code="invalid_data"
        )
    options = [_CONTROL_CHARACTERS.sub(" ", value).strip() for value in values]
    if any(not option for option in options):
        raise PollError("An option must not be empty.", code="invalid_data")
    if any(len(option) > MAX_POLL_OPTION_LENGTH for option in options):
        raise PollError(
            f"An option is limited to {MAX_POLL_OPTION_LENGTH} characters.", code="invalid_data"
        )
    if len({option.casefold() for option in options}) != len(options):
        raise PollError("Two options are the same.", code="invalid_data")
    return options


# --- requests -------------------------------------------------------------------------------


def create_poll(
    actor: Actor,
    meeting: Meeting,
    *,
    peer_id: str,
    question: str,
    options: list[str],
    anonymous: bool,
) -> dict[str, Any]:
    """A moderator in the call starts a poll; everyone gets `pollCreated {poll}`. Returns the
    poll as moderators see it (empty results)."""
    moderation.check_can_moderate(actor, meeting)
    user = signed_in(actor)
    question = clean_question(question)
    cleaned_options = clean_options(options)
    with transaction.atomic():
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        participant_in_call(meeting, peer_id, user=user, guest_key="")
        polls = Poll.objects.filter(meeting=meeting)
        if polls.filter(closed_at__isnull=True).count() >= MAX_OPEN_POLLS:
            raise PollError(
                f"At most {MAX_OPEN_POLLS} polls can be open at once: close one first.",
                code="too_many_polls",
            )
        if polls.count() >= MAX_POLLS:
            raise PollError(f"A meeting has at most {MAX_POLLS} polls.", code="too_many_polls")
        poll = Poll.objects.create(
            meeting=meeting, created_by=user, question=question, anonymous=anonymous
        )
        PollOption.objects.bulk_create(
            PollOption(poll=poll, position=index, text=text)
            for index, text in enumerate(cleaned_options)
        )
        send_after_commit(meeting.code, POLL_CREATED, {"poll": poll_dict(poll)})
        return poll_dict(poll, with_results=True, with_voters=True)


def vote(
    meeting: Meeting, *, peer_id: str, voter: Voter, poll_id: int, option_index: int
) -> dict[str, Any]:
    """Vote in an open poll, or change one's vote. Moderators get `pollResults` (the counts;
    who voted for what only in a named poll). Returns `{pollId, optionIndex}`."""
    participant_in_call(meeting, peer_id, user=voter.user, guest_key=voter.guest_key)
    with transaction.atomic():
        poll = _locked_poll(meeting, poll_id)
        if not poll.is_open:
            raise PollError("This poll is closed.", code="poll_closed")
        option = PollOption.objects.filter(poll=poll, position=option_index).first()
        if option is None:
            raise PollError("That is not one of the poll's options.", code="unknown_option")
        existing = _vote_of(poll, voter)
        if existing is not None and existing.option_id == option.pk:
            return {"pollId": poll.pk, "optionIndex": option_index}
        if not _may_vote(meeting, voter):
            raise PollDenied(
                f"At most {VOTES_PER_WINDOW} votes every {VOTE_WINDOW_SECONDS} seconds.",
                "too_many_votes",
            )
        if existing is None:
            try:
                with transaction.atomic():
                    PollVote.objects.create(
                        poll=poll,
                        option=option,
                        voter_user=voter.user,
                        voter_guest_key="" if voter.user is not None else voter.guest_key,
                        voter_name=voter.name[:100],
                    )
            except IntegrityError:  # cannot happen under the poll's lock; kept as a guard
                raise PollError("You already voted.", code="already_voted") from None
        else:
            existing.option = option
            existing.voter_name = voter.name[:100]
            existing.voted_at = timezone.now()
            existing.save(update_fields=["option", "voter_name", "voted_at"])
        _bump_revision(poll)
        send_after_commit(
            meeting.code,
            POLL_RESULTS,
            {"poll": poll_dict(poll, with_results=True, with_voters=True)},
            audience=MODERATORS,
        )
    return {"pollId": poll.pk, "optionIndex": option_index}


def close_poll(actor: Actor, meeting: Meeting, *, peer_id: str, poll_id: int) -> dict[str, Any]:
    """A moderator closes a poll: everyone gets `pollClosed {poll}` with the counts (never the
    voters). Closing a closed poll changes nothing and tells nobody."""
    moderation.check_can_moderate(actor, meeting)
    participant_in_call(meeting, peer_id, user=signed_in(actor), guest_key="")
    with transaction.atomic():
        poll = _locked_poll(meeting, poll_id)
        if poll.is_open:
            poll.closed_at = timezone.now()
            poll.save(update_fields=["closed_at"])
            _bump_revision(poll)
            send_after_commit(
                meeting.code, POLL_CLOSED, {"poll": poll_dict(poll, with_results=True)}
            )
        return poll_dict(poll, with_results=True, with_voters=True)


def polls_for(
    actor: Actor, meeting: Meeting, *, peer_id: str, voter: Voter
) -> list[dict[str, Any]]:
    """The meeting's polls as the caller may see them, oldest first: moderators with results
    (and a named poll's voters); others with their own choice, and results once closed."""
    participant_in_call(meeting, peer_id, user=voter.user, guest_key=voter.guest_key)
    is_moderator = moderation.moderator_role(actor, meeting) is not None
    polls = list(Poll.objects.filter(meeting=meeting).prefetch_related("options"))
    mine = _choices_of(polls, voter)
    return [
        {
            **poll_dict(
                poll,
                with_results=is_moderator or not poll.is_open,
                with_voters=is_moderator,
            ),
            "myVote": mine.get(poll.pk),
        }
        for poll in polls
    ]


# --- what is sent ---------------------------------------------------------------------------


def poll_dict(
    poll: Poll, *, with_results: bool = False, with_voters: bool = False
) -> dict[str, Any]:
    """A poll on the wire. `results` only when asked for; `voters` (per option, in the order
    they voted) only when asked for and never for an anonymous poll."""
    options = list(poll.options.all())
    data: dict[str, Any] = {
        "pollId": poll.pk,
        "question": poll.question,
        "options": [option.text for option in options],
        "anonymous": poll.anonymous,
        "open": poll.is_open,
        "createdAt": _iso(poll.created_at),
        "closedAt": _iso(poll.closed_at),
        "revision": poll.revision,
    }
    if with_results:
        data["results"] = results_of(poll, options, with_voters=with_voters)
    return data


def results_of(poll: Poll, options: list[PollOption], *, with_voters: bool) -> dict[str, Any]:
    counts = dict(
        PollVote.objects.filter(poll=poll)
        .values_list("option_id")
        .annotate(n=Count("pk"))
        .values_list("option_id", "n")
    )
    results: dict[str, Any] = {
        "counts": [counts.get(option.pk, 0) for option in options],
        "total": sum(counts.values()),
    }
    if with_voters and not poll.anonymous:
        names: dict[int, list[str]] = {option.pk: [] for option in options}
        for vote_row in PollVote.objects.filter(poll=poll).order_by("voted_at", "pk"):
            names.setdefault(vote_row.option_id, []).append(_voter_label(vote_row))
        results["voters"] = [names[option.pk] for option in options]
    return results


# --- after the call: the meeting page -------------------------------------------------------


@dataclass(frozen=True)
class OptionResult:
    text: str
    count: int
    percent: int
    voters: list[str]


@dataclass(frozen=True)
class PollReport:
    question: str
    anonymous: bool
    is_open: bool
    created_at: Any
    closed_at: Any
    total: int
    options: list[OptionResult]
    # Whether the page shows results (closed, or the reader moderates) and voters (a named
    # poll, to a moderator).
    shows_results: bool
    shows_voters: bool


def page_context(user: Actor, meeting: Meeting) -> dict[str, Any]:
    """The meeting page's polls, for whoever may read its chat transcript (the same rule:
    chat.services.can_read_transcript). Results of an open poll only to moderators, as in the
    call; voters' names only for a named poll and only to moderators."""
    if not chat_services.can_read_transcript(user, meeting):
        return {"poll_reports": []}
    is_moderator = moderation.moderator_role(user, meeting) is not None
    reports = []
    for poll in Poll.objects.filter(meeting=meeting).prefetch_related("options"):
        options = list(poll.options.all())
        shows_results = is_moderator or not poll.is_open
        shows_voters = shows_results and is_moderator and not poll.anonymous
        results = results_of(poll, options, with_voters=shows_voters)
        total = results["total"]
        voters = results.get("voters") or [[] for _ in options]
        reports.append(
            PollReport(
                question=poll.question,
                anonymous=poll.anonymous,
                is_open=poll.is_open,
                created_at=poll.created_at,
                closed_at=poll.closed_at,
                total=total if shows_results else 0,
                options=[
                    OptionResult(
                        text=option.text,
                        count=count if shows_results else 0,
                        percent=round(100 * count / total) if total and shows_results else 0,
                        voters=names,
                    )
                    for option, count, names in zip(options, results["counts"], voters, strict=True)
                ],
                shows_results=shows_results,
                shows_voters=shows_voters,
            )
        )
    return {"poll_reports": reports}


# --- helpers --------------------------------------------------------------------------------


def _locked_poll(meeting: Meeting, poll_id: int) -> Poll:
    """The meeting's poll under its row lock (a vote and a close of the same poll are then one
    after the other: no vote lands after the results went out as final)."""
    poll = Poll.objects.select_for_update().filter(meeting=meeting, pk=poll_id).first()
    if poll is None:
        raise PollError("There is no such poll in this meeting.", code="unknown_poll")
    return poll


def _vote_of(poll: Poll, voter: Voter) -> PollVote | None:
    if voter.user is not None:
        return PollVote.objects.filter(poll=poll, voter_user=voter.user).first()
    if not voter.guest_key:
        return None
    return PollVote.objects.filter(poll=poll, voter_guest_key=voter.guest_key).first()


def _choices_of(polls: list[Poll], voter: Voter) -> dict[int, int]:
    """{pollId: optionIndex} of the voter's own votes."""
    votes = PollVote.objects.filter(poll__in=polls)
    if voter.user is not None:
        votes = votes.filter(voter_user=voter.user)
    elif voter.guest_key:
        votes = votes.filter(voter_guest_key=voter.guest_key)
    else:
        return {}
    return dict(votes.values_list("poll_id", "option__position"))


def _bump_revision(poll: Poll) -> None:
    poll.revision += 1
    poll.save(update_fields=["revision"])


def _voter_label(vote_row: PollVote) -> str:
    return f"{vote_row.voter_name} (guest)" if vote_row.by_guest else vote_row.voter_name


def _may_vote(meeting: Meeting, voter: Voter) -> bool:
    """VOTES_PER_WINDOW per person in a window that starts with their first vote (as
    rooms.together counts reactions)."""
    person = f"user-{voter.user.pk}" if voter.user is not None else f"guest-{voter.guest_key}"
    key = f"rooms:poll-votes:{meeting.code}:{person}"
    cache.add(key, 0, timeout=VOTE_WINDOW_SECONDS)
    try:
        count = int(cache.incr(key))
    except ValueError:  # the window ended between add and incr
        cache.add(key, 1, timeout=VOTE_WINDOW_SECONDS)
        count = 1
    return count <= VOTES_PER_WINDOW


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
