"""The people an organizer can invite, for the schedule form's completion (issue 12.9).

One instance of meet is one organization, so its directory is simply its active users: anyone
with an account here may be found by name or address by anyone else signed in, as in a
Google Workspace directory. Nothing is returned that the meeting pages do not already show to
co-workers (the name and the address); the requester is left out (nobody invites themselves).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q
from django.db.models.functions import Lower

from accounts.models import User

MIN_QUERY_LENGTH = 2  # one letter matches half the directory: no help, and a cheap way to list it
MAX_QUERY_LENGTH = 100
MAX_MATCHES = 8


@dataclass(frozen=True)
class Person:
    name: str
    email: str


class QueryNotAccepted(ValueError):
    """The text typed is too short or too long to search for."""


def clean_query(raw: str) -> str:
    """The query as searched: trimmed, inner runs of spaces made one; QueryNotAccepted when it
    is shorter than MIN_QUERY_LENGTH or longer than MAX_QUERY_LENGTH characters."""
    query = " ".join(raw.split())
    if len(query) < MIN_QUERY_LENGTH:
        raise QueryNotAccepted(f"Type at least {MIN_QUERY_LENGTH} characters.")
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryNotAccepted(f"Type at most {MAX_QUERY_LENGTH} characters.")
    return query


def _starts_a_word(field: str, query: str) -> Q:
    """`field` begins with `query`, or one of its words does ("ana" finds "Maria Ana Lopes");
    a match inside a word ("ria") is left out, as it surprises more than it helps."""
    return Q(**{f"{field}__istartswith": query}) | Q(**{f"{field}__icontains": f" {query}"})


def find_people(query: str, *, requester: User, limit: int = MAX_MATCHES) -> list[Person]:
    """Active users other than `requester` whose name (or a word of it) or address starts with
    `query` (already cleaned by clean_query), at most `limit`, by address."""
    matches = (
        User.objects.filter(is_active=True)
        .exclude(pk=requester.pk)
        .filter(
            _starts_a_word("full_name", query)
            | _starts_a_word("first_name", query)
            | _starts_a_word("last_name", query)
            | Q(email__istartswith=query)
        )
        .order_by("email")[:limit]
    )
    return [Person(name=user.display_name, email=user.email) for user in matches]


def names_by_email(emails: Iterable[str]) -> dict[str, str]:
    """The names of the active users among these addresses (lower-cased address → name), for
    the chips of invitees already on a meeting; other addresses have no name to show."""
    wanted = {email.strip().lower() for email in emails if email.strip()}
    if not wanted:
        return {}
    # Invitations store addresses lower-cased; an account keeps the case it was made with.
    users = (
        User.objects.filter(is_active=True)
        .annotate(email_lower=Lower("email"))
        .filter(email_lower__in=wanted)
    )
    return {user.email.lower(): user.display_name for user in users}
