"""One participant in a browser context, driven through the call page's accessible UI.

Media facts come from getStats() on every RTCPeerConnection the page created (recorded by
pc_recorder.js), never from the client's own bookkeeping.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import BrowserContext, Locator, Page, WebSocketRoute, expect

JOIN_TIMEOUT_MS = 30_000
# The People button is named by what it shows: "People" and the count on its badge ("People 2"),
# and for hosts while anyone asks to join, that count too ("People 2 asking to join: 1").
PEOPLE = re.compile(r"^People \d+( asking to join: \d+)?$")
# The pre-join's button: "Ask to join" for a person the meeting sends to the lobby (issue 12.3).
JOIN_OR_ASK = re.compile(r"^(Join now|Ask to join)$")
VIDEO_TRACK_ID_JS = "v => (v.srcObject && v.srcObject.getVideoTracks()[0] || {}).id || null"


def poll(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Wait on a condition (never a fixed sleep); return its truthy value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)


@dataclass
class Participant:
    name: str
    context: BrowserContext
    page: Page
    websockets: list[tuple[WebSocketRoute, WebSocketRoute]] = field(default_factory=list)

    # --- the signaling WebSocket, when routed through Playwright ----------------------------
    def route_websocket(self, page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        self.websockets.append((page_side, server_side))

    def websocket_count(self) -> int:
        """Signaling connections opened so far. Playwright's sync API runs route handlers only
        while the test calls into it, so make a call first."""
        self.page.evaluate("0")
        return len(self.websockets)

    def drop_websocket(self) -> None:
        """Cut the current signaling connection at both ends: the server sees its client go away
        (1001) and the page sees the server restart (1012), as after a server or network failure."""
        page_side, server_side = self.websockets[-1]
        server_side.close(code=1001, reason="going away")
        page_side.close(code=1012, reason="service restart")

    # --- UI ----------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        self.page.goto(url)
        expect(self.page.get_by_role("button", name=JOIN_OR_ASK)).to_be_enabled(
            timeout=JOIN_TIMEOUT_MS
        )

    def join(self, url: str) -> None:
        self.open(url)
        name = self.page.get_by_label("Your name")
        if name.is_editable():  # a guest types a name; a signed-in person has their account's
            name.fill(self.name)
        self.press_join()

    def press_join(self) -> None:
        self.page.get_by_role("button", name="Join now", exact=True).click()
        expect(self.leave_button).to_be_visible(timeout=JOIN_TIMEOUT_MS)

    @property
    def leave_button(self) -> Locator:
        return self.page.get_by_role("button", name="Leave call", exact=True)

    def button(self, name: str | re.Pattern[str]) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    @property
    def people_button(self) -> Locator:
        return self.button(PEOPLE)

    # --- People: one row per person, each with a mic icon and a ⋮ menu (people.js) ---------
    def person(self, name: str) -> Locator:
        """The People panel's row of `name` ("Alice (You)" for oneself)."""
        return self.page.locator("#people-list > li").filter(
            has=self.page.locator(".person-name", has_text=re.compile(f"^{re.escape(name)}$"))
        )

    def open_person_menu(self, name: str) -> Locator:
        """Open the ⋮ menu of `name` in People (People must be open); returns the menu."""
        label = "yourself" if name.endswith(" (You)") else name
        self.page.get_by_role("button", name=f"More options for {label}", exact=True).click()
        menu = self.page.get_by_role("menu", name=f"Options for {label}", exact=True)
        expect(menu).to_be_visible()
        return menu

    def choose_for_person(self, name: str, item: str) -> None:
        """A choice in the ⋮ menu of `name` in People ("Pin", "Mute", "Remove from call")."""
        self.open_person_menu(name).get_by_role("menuitem", name=item, exact=True).click()

    def tile(self, name: str) -> Locator:
        return self.page.locator("#tile-grid").get_by_role("group", name=name, exact=True)

    def tiles(self) -> Locator:
        return self.page.locator("#tile-grid .tile")

    # --- media facts -------------------------------------------------------------------------
    def media_stats(self) -> dict[str, Any]:
        return self.page.evaluate("window.__mediaStats()")

    def frames_by_track(self) -> dict[str, dict[str, int]]:
        return self.page.evaluate("window.__framesByTrack()")

    def video_track_id_of(self, name: str) -> str | None:
        """The remote track id shown in the tile of `name` (None while it has no video)."""
        return self.tile(name).locator("video").evaluate(VIDEO_TRACK_ID_JS)

    def frames_from(self, name: str) -> int:
        track_id = self.video_track_id_of(name)
        if not track_id:
            return -1
        return int(self.frames_by_track().get(track_id, {}).get("frames", -1))

    def wait_for_frames_from(self, name: str, more_than: int, timeout: float = 20) -> int:
        return poll(
            lambda: (frames := self.frames_from(name)) > more_than and frames,
            timeout,
            f"{self.name} to decode more than {more_than} frames from {name}",
        )

    def picture_change(self, name: str) -> float:
        return float(
            self.tile(name).locator("video").evaluate("v => window.__videoChange(v, 1000)")
        )

    def selected_candidate_addresses(self) -> list[tuple[str, str]]:
        """(local, remote) address of the selected ICE pair of every open peer connection."""
        return [
            tuple(pair)
            for pair in self.page.evaluate(
                """async () => {
                  const pairs = [];
                  for (const pc of window.__peerConnections) {
                    if (pc.connectionState !== "connected") continue;
                    const report = await pc.getStats();
                    for (const s of report.values()) {
                      if (s.type === "transport" && s.selectedCandidatePairId) {
                        const pair = report.get(s.selectedCandidatePairId);
                        const local = report.get(pair.localCandidateId);
                        const remote = report.get(pair.remoteCandidateId);
                        pairs.push([local.address || local.ip, remote.address || remote.ip]);
                      }
                    }
                  }
                  return pairs;
                }"""
            )
        ]
