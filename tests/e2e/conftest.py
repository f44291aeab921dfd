"""Fixtures for the browser tests: daphne + an SFU node as real processes, one Chromium.

- The test database must be committed for the subprocesses to see it, so every browser test
  uses django_db(transaction=True). The SFU node is started per test because the transactional
  flush after each test deletes its registration row; daphne is per test as well (≈1 s).
- Loopback only: Chromium, daphne and the SFU node run in a network namespace whose only
  interface is `lo` (tests/e2e/netns.py, needs root; Redis/PostgreSQL on the host's 127.0.0.1
  are bridged in at the same port). Without root they run on the host network and the check
  that every selected ICE pair is 127.0.0.1 is skipped. MEET_E2E_HOST_NETWORK=1 forces that.
- Signed-in users: a session is created in the database and set as the context's cookie.
- Media facts come from getStats() of every RTCPeerConnection (pc_recorder.js, an init script).
- Dropping the signaling WebSocket: `participants(name, droppable_websocket=True)` routes that
  page's WebSocket through Playwright; `Participant.drop_websocket()` then closes it at both
  ends (the server sees the client go away, the page sees code 1012), as a server restart or a
  network failure would. No hook in the server is needed.
- Logs of the subprocesses: var/e2e-logs/<test>-daphne.log and -sfu.log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import Browser, sync_playwright

from accounts.models import User
from tests.e2e.call_page import Participant
from tests.e2e.netns import LoopbackNamespace
from tests.e2e.stack import (
    CHROMIUM,
    LOG_DIR,
    Daphne,
    SfuNodeProcess,
    child_env,
    create_meeting,
    database_url,
    launch_chromium,
    no_wrap,
    session_cookie,
)

PC_RECORDER = (Path(__file__).parent / "pc_recorder.js").read_text()


def _log_name(request: pytest.FixtureRequest, what: str) -> Path:
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
    return LOG_DIR / f"{test}-{what}.log"


@pytest.fixture(scope="session")
def loopback_network(django_db_setup: None) -> Iterator[LoopbackNamespace | None]:
    """The loopback-only network namespace everything media-related runs in (None: host)."""
    namespace = LoopbackNamespace.create()
    if namespace is None:
        yield None
        return
    try:
        namespace.bridge_services(os.environ["REDIS_URL"], database_url(connection.settings_dict))
        yield namespace
    finally:
        namespace.close()


@pytest.fixture(scope="module")
def browser(loopback_network: LoopbackNamespace | None) -> Iterator[Browser]:
    """One Chromium per test module, several contexts per test.

    Playwright's sync API keeps an asyncio loop running in this thread, which makes Django
    refuse ORM calls (SynchronousOnlyOperation) from the tests and from pytest-django's flush.
    They are plain blocking calls here, so the check is lifted while the browser lives, and
    only then (module scope keeps other test modules under the check).
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, loopback_network)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def stack_env(transactional_db: None) -> dict[str, str]:
    return child_env(database_url(connection.settings_dict))


@pytest.fixture
def sfu_node(
    stack_env: dict[str, str],
    loopback_network: LoopbackNamespace | None,
    request: pytest.FixtureRequest,
) -> Iterator[SfuNodeProcess]:
    yield from node_process(stack_env, loopback_network, request, "sfu")


def node_process(
    stack_env: dict[str, str],
    loopback_network: LoopbackNamespace | None,
    request: pytest.FixtureRequest,
    role: str,
) -> Iterator[SfuNodeProcess]:
    """A registered SFU node process for this test (`role` names its log and node), stopped
    after it."""
    from sfu import registry

    node = SfuNodeProcess(
        stack_env,
        _log_name(request, role),
        node_name=f"e2e-{os.getpid()}-{id(request)}-{role}",
        wrap=loopback_network.wrap if loopback_network else no_wrap,
    )
    node.start(is_live=lambda name: registry.live_nodes().filter(name=name).exists())
    yield node
    node.stop()


@pytest.fixture
def daphne(
    stack_env: dict[str, str],
    sfu_node: SfuNodeProcess,
    loopback_network: LoopbackNamespace | None,
    request: pytest.FixtureRequest,
) -> Iterator[Daphne]:
    wrap = loopback_network.wrap if loopback_network else no_wrap
    server = Daphne(stack_env, _log_name(request, "daphne"), wrap=wrap)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def participants(browser: Browser, daphne: Daphne) -> Iterator[Callable[..., Participant]]:
    """Factory: a signed-in user in a browser context of their own."""
    opened: list[Participant] = []

    def make(
        name: str,
        *,
        viewport: dict[str, int] | None = None,
        user: User | None = None,
        droppable_websocket: bool = False,
        guest: bool = False,
    ) -> Participant:
        if user is None and not guest:
            user = User.objects.create_user(
                f"{name.lower()}-{len(opened)}@example.org", password=None, first_name=name
            )
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 720})
        if user is not None:
            context.add_cookies([session_cookie(user, daphne.base_url)])
        context.add_init_script(PC_RECORDER)
        participant = Participant(name=name, context=context, page=None)  # type: ignore[arg-type]
        if droppable_websocket:
            # The page's signaling WebSocket goes through Playwright so the test can cut it from
            # both ends, as a server restart or a network failure would (see Participant.drop).
            context.route_web_socket(re.compile(r"/ws/rooms/"), participant.route_websocket)
        participant.page = context.new_page()
        participant.user = user  # type: ignore[attr-defined]
        opened.append(participant)
        return participant

    yield make
    for participant in opened:
        participant.context.close()


@pytest.fixture
def meeting_url(daphne: Daphne) -> Callable[[Participant], str]:
    """The meeting link, for a meeting hosted by the given participant's user."""

    def make(host: Participant) -> str:
        return daphne.base_url + create_meeting(host.user)  # type: ignore[attr-defined]

    return make
