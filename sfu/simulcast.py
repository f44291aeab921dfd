"""Simulcast in the SDP (RFC 8851 `a=rid`, RFC 8853 `a=simulcast`): read the browser's offer,
accept it in the SFU's answer.

aiortc neither parses nor answers these attributes, so a browser that offers three encodings
would fall back to one. The send-transport offer is read here per m-line (`offered_layers`),
checked (a malformed line is `bad_sdp`), and `accept_layers` writes the `recv` side into
aiortc's answer. Layers are listed in the order of the offer's `a=simulcast:send` line, which
the protocol asks to be lowest first (docs/protocol.md); each becomes a `Layer` of the
producer (sfu/layers.py).
"""

from __future__ import annotations

import re

from sfu.errors import EngineError

# What the SFU forwards from one m-line: the call client sends three (about 180p, 360p, 720p).
MAX_LAYERS = 3
# RFC 8851's rid-id is 1*(ALPHA / DIGIT / "-" / "_"); RTP carries it in a one-byte-header
# extension of at most 16 bytes.
RID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
RID_LINE = re.compile(r"^a=rid:(\S+) (send|recv)(?: (.*))?$")
SIMULCAST_LINE = re.compile(r"^a=simulcast:(.*)$")


def offered_layers(sdp: str) -> dict[str, list[str]]:
    """The rids each simulcast m-line of a send-transport offer sends, by mid, lowest first.

    m-lines without `a=simulcast` are not in the result (one layer, as today). Raises
    EngineError("bad_sdp") for a rid or simulcast line that cannot work.
    """
    layers: dict[str, list[str]] = {}
    for section in _media_sections(sdp):
        kind = section[0][2:].split(" ", 1)[0]
        mid = next((line[6:] for line in section if line.startswith("a=mid:")), None)
        rids: set[str] = set()
        simulcast: list[str] | None = None
        for line in section:
            if line.startswith("a=rid:"):
                rids.add(_rid_line(line, mid))
            elif line.startswith("a=simulcast:"):
                if simulcast is not None:
                    raise EngineError("bad_sdp", f"m-line {mid!r} has two a=simulcast lines")
                simulcast = _simulcast_line(line, mid)
        if simulcast is None:
            continue
        if kind != "video":
            raise EngineError("bad_sdp", f"only video m-lines can be simulcast ({mid!r} is {kind})")
        missing = [rid for rid in simulcast if rid not in rids]
        if missing:
            raise EngineError(
                "bad_sdp", f"m-line {mid!r}: a=simulcast names rids without a=rid: {missing}"
            )
        if mid is not None:
            layers[mid] = simulcast
    return layers


def accept_layers(answer: str, layers: dict[str, list[str]]) -> str:
    """aiortc's answer with each simulcast m-line's layers accepted (`a=rid:X recv` and
    `a=simulcast:recv ...`), in the offer's order."""
    if not layers:
        return answer
    newline = "\r\n" if "\r\n" in answer else "\n"
    out: list[str] = []
    for line in answer.split(newline):
        out.append(line)
        if line.startswith("a=mid:") and line[6:] in layers:
            rids = layers[line[6:]]
            out.extend(f"a=rid:{rid} recv" for rid in rids)
            out.append("a=simulcast:recv " + ";".join(rids))
    return newline.join(out)


def _media_sections(sdp: str) -> list[list[str]]:
    sections: list[list[str]] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            sections.append([line])
        elif sections and line:
            sections[-1].append(line)
    return sections


def _rid_line(line: str, mid: str | None) -> str:
    match = RID_LINE.match(line)
    if match is None or not RID.match(match.group(1)):
        raise EngineError("bad_sdp", f"m-line {mid!r}: malformed rid line {line[:80]!r}")
    if match.group(2) != "send":
        raise EngineError(
            "bad_sdp", f"m-line {mid!r}: a send-transport offer only sends ({line[:80]!r})"
        )
    return match.group(1)


def _simulcast_line(line: str, mid: str | None) -> list[str]:
    """The send streams of `a=simulcast:send a;b;c` (RFC 8853): the first of each list of
    alternatives (`a,b`), without the paused mark (`~`). A `recv` part is refused: the browser
    only sends on this transport."""
    match = SIMULCAST_LINE.match(line)
    parts = match.group(1).split() if match else []
    if len(parts) != 2 or parts[0] != "send":
        raise EngineError(
            "bad_sdp", f"m-line {mid!r}: expected a=simulcast:send <rids> ({line[:80]!r})"
        )
    rids: list[str] = []
    for alternatives in parts[1].split(";"):
        first = alternatives.split(",")[0].removeprefix("~")
        if not RID.match(first):
            raise EngineError("bad_sdp", f"m-line {mid!r}: malformed simulcast rid {first[:20]!r}")
        if first in rids:
            raise EngineError("bad_sdp", f"m-line {mid!r}: rid {first!r} is listed twice")
        rids.append(first)
    if len(rids) > MAX_LAYERS:
        raise EngineError(
            "bad_sdp", f"m-line {mid!r}: at most {MAX_LAYERS} simulcast layers, got {len(rids)}"
        )
    return rids
