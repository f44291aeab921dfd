"""Simulcast in the SDP: the layers a browser's offer sends, refused when malformed, and the
SFU's answer accepting them in the offer's order."""

from __future__ import annotations

import pytest

from sfu.errors import EngineError
from sfu.simulcast import accept_layers, offered_layers

HEAD = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n"


def video(mid: str, lines: str) -> str:
    return f"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\na=sendonly\r\n{lines}"


CHROME_LINES = "a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n"


def test_a_browsers_three_rids_are_read_lowest_first_by_mid() -> None:
    sdp = HEAD + AUDIO + video("1", CHROME_LINES) + video("2", "")
    assert offered_layers(sdp) == {"1": ["q", "h", "f"]}


def test_paused_marks_and_alternatives_keep_the_first_rid_of_each_stream() -> None:
    lines = "a=rid:a send\r\na=rid:b send\r\na=rid:c send\r\na=simulcast:send ~a;b,c\r\n"
    assert offered_layers(HEAD + video("v", lines)) == {"v": ["a", "b"]}


def test_rid_lines_without_simulcast_mean_one_layer() -> None:
    assert offered_layers(HEAD + video("1", "a=rid:q send\r\n")) == {}


def test_restrictions_after_the_direction_are_allowed() -> None:
    lines = "a=rid:q send max-width=320;max-height=180\r\na=rid:f send\r\na=simulcast:send q;f\r\n"
    assert offered_layers(HEAD + video("1", lines)) == {"1": ["q", "f"]}


@pytest.mark.parametrize(
    "lines",
    [
        "a=simulcast:send q;h\r\na=rid:q send\r\n",  # h has no a=rid
        "a=rid:q send\r\na=simulcast:recv q\r\n",  # the browser only sends here
        "a=rid:q send\r\na=simulcast:send q recv q\r\n",
        "a=rid:q recv\r\na=simulcast:send q\r\n",
        "a=rid:q send\r\na=simulcast:send q;q\r\n",
        "a=rid:q send\r\na=simulcast:send q\r\na=simulcast:send q\r\n",
        "a=rid:" + "x" * 17 + " send\r\na=simulcast:send " + "x" * 17 + "\r\n",
        "a=rid:q<script> send\r\na=simulcast:send q<script>\r\n",
        "a=rid:\r\na=simulcast:send q\r\n",
        "a=simulcast:\r\n",
        "".join(f"a=rid:r{i} send\r\n" for i in range(4)) + "a=simulcast:send r0;r1;r2;r3\r\n",
    ],
)
def test_malformed_simulcast_is_bad_sdp(lines: str) -> None:
    with pytest.raises(EngineError) as raised:
        offered_layers(HEAD + video("1", lines))
    assert raised.value.code == "bad_sdp"


def test_simulcast_audio_is_bad_sdp() -> None:
    lines = "a=rid:q send\r\na=simulcast:send q\r\n"
    with pytest.raises(EngineError) as raised:
        offered_layers(HEAD + AUDIO + lines)
    assert raised.value.code == "bad_sdp"


def test_the_answer_accepts_each_simulcast_m_line_in_the_offers_order() -> None:
    answer = (
        HEAD
        + AUDIO.replace("sendonly", "recvonly")
        + video("1", "").replace("sendonly", "recvonly")
    )
    accepted = accept_layers(answer, {"1": ["q", "h", "f"]})
    lines = accepted.split("\r\n")
    at = lines.index("a=mid:1")
    assert lines[at + 1 : at + 5] == [
        "a=rid:q recv",
        "a=rid:h recv",
        "a=rid:f recv",
        "a=simulcast:recv q;h;f",
    ]
    # The audio m-line is untouched, and nothing changes without layers.
    assert accepted.count("a=rid:") == 3
    assert accept_layers(answer, {}) == answer
