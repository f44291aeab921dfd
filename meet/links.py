"""Absolute links to the site's pages (join links, meeting pages, RSVP links, calendar feeds).

Every generated link goes through `absolute_url`:

* SITE_URL set: that address, always (behind a proxy the request's host may be an inner one).
* SITE_URL unset, with a request at hand (pages, the .ics download, the feed): the address the
  request came to (`request.build_absolute_uri`), so links follow the host and port served.
* SITE_URL unset, no request (emails and calendar files built by Celery): settings.SITE_URL,
  which then holds the address `make run` printed (MEET_SERVED_URL, else HOST/PORT/MEET_TLS;
  see meet/settings.py).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    """`path` (starting with "/") as an absolute URL on the address the site is served on."""
    if request is not None and not settings.SITE_URL_CONFIGURED:
        return request.build_absolute_uri(path)
    return str(settings.SITE_URL) + path
