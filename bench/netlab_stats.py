"""The network lab's measurements: what is read from each page's getStats and from the SFU,
and how a window of samples becomes the figures in the table (bench/netlab.py).

Browser figures come from getStats() of every RTCPeerConnection the page made (recorded by
tests/e2e/pc_recorder.js, loaded as an init script). Remote videos are told apart by the tile
they are shown in (`#tile-grid .tile`, aria-label = the publisher's name; the <video>'s track
id is the inbound-rtp's trackIdentifier). Counters are read as differences between the first
and the last sample of the window; a remote video whose inbound-rtp changed identity (SSRC or
track) inside the window is summed over its pieces.
"""

from __future__ import annotations

import statistics
from typing import Any

SNAPSHOT_JS = """
async () => {
  const tiles = {};
  for (const el of document.querySelectorAll("#tile-grid .tile")) {
    const video = el.querySelector("video");
    const track = video && video.srcObject && video.srcObject.getVideoTracks()[0];
    const quality = el.querySelector(".tile-quality");
    tiles[el.getAttribute("aria-label") || "?"] = {
      peerId: el.dataset.peerId || null,
      local: el.classList.contains("tile-local"),
      trackId: track ? track.id : null,
      quality: quality ? quality.dataset.quality || null : null,
      shownWidth: video ? video.clientWidth : 0,
      shownHeight: video ? video.clientHeight : 0,
    };
  }
  const pick = (s, keys) => {
    const out = {};
    for (const k of keys) if (s[k] !== undefined) out[k] = s[k];
    return out;
  };
  const INBOUND = ["ssrc", "mid", "trackIdentifier", "frameWidth", "frameHeight",
    "framesPerSecond", "framesDecoded", "framesReceived", "framesDropped", "keyFramesDecoded",
    "freezeCount", "totalFreezesDuration", "pauseCount", "totalPausesDuration",
    "packetsLost", "packetsReceived", "nackCount", "pliCount", "firCount", "bytesReceived",
    "jitter", "jitterBufferDelay", "jitterBufferEmittedCount", "retransmittedPacketsReceived",
    "decoderImplementation"];
  const OUTBOUND = ["ssrc", "mid", "rid", "active", "frameWidth", "frameHeight",
    "framesPerSecond", "framesEncoded", "framesSent", "keyFramesEncoded", "bytesSent",
    "packetsSent", "retransmittedPacketsSent", "retransmittedBytesSent", "nackCount",
    "pliCount", "firCount", "targetBitrate", "qualityLimitationReason",
    "qualityLimitationDurations", "qualityLimitationResolutionChanges", "scalabilityMode",
    "encoderImplementation", "totalEncodeTime"];
  const pcs = [];
  for (const pc of window.__peerConnections || []) {
    if (pc.connectionState === "closed") continue;
    const report = await pc.getStats();
    const entry = {state: pc.connectionState, inboundVideo: [], inboundAudio: [],
      outboundVideo: [], remoteInbound: [], pair: null};
    for (const s of report.values()) {
      if (s.type === "inbound-rtp" && s.kind === "video") entry.inboundVideo.push(pick(s, INBOUND));
      else if (s.type === "inbound-rtp" && s.kind === "audio") {
        entry.inboundAudio.push(pick(s, ["ssrc", "trackIdentifier", "packetsLost",
          "packetsReceived", "bytesReceived", "concealedSamples", "totalSamplesReceived"]));
      } else if (s.type === "outbound-rtp" && s.kind === "video") {
        entry.outboundVideo.push(pick(s, OUTBOUND));
      }
      else if (s.type === "remote-inbound-rtp" && s.kind === "video") {
        entry.remoteInbound.push(pick(s, ["ssrc", "localId", "roundTripTime", "fractionLost",
          "packetsLost"]));
      } else if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = report.get(s.selectedCandidatePairId);
        if (pair) {
          const local = report.get(pair.localCandidateId) || {};
          const remote = report.get(pair.remoteCandidateId) || {};
          entry.pair = {
            currentRoundTripTime: pair.currentRoundTripTime,
            availableOutgoingBitrate: pair.availableOutgoingBitrate,
            availableIncomingBitrate: pair.availableIncomingBitrate,
            bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
            local: local.address || local.ip, remote: remote.address || remote.ip,
          };
        }
      }
    }
    pcs.push(entry);
  }
  const call = window.meetCall || {};
  return {t: performance.now() / 1000, peerId: call.peerId || null, tiles, pcs};
}
"""

ALL_SEE_ALL_JS = """
async (others) => {
  const frames = await window.__framesByTrack();
  for (const name of others) {
    const el = [...document.querySelectorAll("#tile-grid .tile")]
      .find((t) => t.getAttribute("aria-label") === name);
    const video = el && el.querySelector("video");
    const track = video && video.srcObject && video.srcObject.getVideoTracks()[0];
    if (!track || !(frames[track.id] && frames[track.id].frames > 0)) return false;
  }
  return true;
}
"""


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _delta(first: dict[str, Any], last: dict[str, Any], key: str) -> float:
    return max(0.0, _num(last.get(key)) - _num(first.get(key)))


def remote_videos(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Publisher name -> its inbound-rtp (video) in this viewer's snapshot."""
    by_track: dict[str, dict[str, Any]] = {}
    for pc in snapshot["pcs"]:
        for stat in pc["inboundVideo"]:
            if stat.get("trackIdentifier"):
                by_track[stat["trackIdentifier"]] = stat
    result = {}
    for name, tile in snapshot["tiles"].items():
        if tile["local"] or not tile["trackId"]:
            continue
        stat = by_track.get(tile["trackId"])
        if stat is not None:
            result[name] = stat
    return result


def receive_pair(snapshot: dict[str, Any]) -> dict[str, Any] | None:
    """The selected candidate pair of the connection that receives (has inbound video)."""
    for pc in snapshot["pcs"]:
        if pc["inboundVideo"] and pc["pair"]:
            return pc["pair"]
    return None


def send_pc(snapshot: dict[str, Any]) -> dict[str, Any] | None:
    for pc in snapshot["pcs"]:
        if pc["outboundVideo"]:
            return pc
    return None


def _pieces(samples: list[tuple[float, dict[str, Any]]]) -> list[list[tuple[float, dict]]]:
    """Split a series of one remote video's stats where its identity (ssrc/track) changes."""
    pieces: list[list[tuple[float, dict]]] = []
    identity: tuple[Any, Any] | None = None
    for t, stat in samples:
        key = (stat.get("ssrc"), stat.get("trackIdentifier"))
        if key != identity:
            pieces.append([])
            identity = key
        pieces[-1].append((t, stat))
    return pieces


INBOUND_COUNTERS = (
    "framesDecoded",
    "framesDropped",
    "keyFramesDecoded",
    "freezeCount",
    "totalFreezesDuration",
    "packetsLost",
    "packetsReceived",
    "nackCount",
    "pliCount",
    "firCount",
    "bytesReceived",
    "jitterBufferDelay",
    "jitterBufferEmittedCount",
    "retransmittedPacketsReceived",
)


def summarize_viewer(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Per remote video: resolution, fps, freezes, loss, NACK/PLI, kbit/s; the viewer's RTT."""
    if len(snapshots) < 2:
        return {"videos": {}, "rtt_ms": None}
    window = snapshots[-1]["t"] - snapshots[0]["t"]
    series: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for snapshot in snapshots:
        for name, stat in remote_videos(snapshot).items():
            series.setdefault(name, []).append((snapshot["t"], stat))
    videos = {}
    for name, samples in series.items():
        totals = dict.fromkeys(INBOUND_COUNTERS, 0.0)
        for piece in _pieces(samples):
            first, last = piece[0][1], piece[-1][1]
            for key in INBOUND_COUNTERS:
                totals[key] += _delta(first, last, key)
        last = samples[-1][1]
        heights = [s.get("frameHeight") or 0 for _, s in samples]
        expected = totals["packetsReceived"] + totals["packetsLost"]
        emitted = totals["jitterBufferEmittedCount"]
        covered = samples[-1][0] - samples[0][0]
        videos[name] = {
            "frame_width": last.get("frameWidth") or 0,
            "frame_height": last.get("frameHeight") or 0,
            "min_frame_height": min(heights) if heights else 0,
            "fps": round(totals["framesDecoded"] / window, 1) if window else None,
            "fps_reported_last": last.get("framesPerSecond"),
            "freezes": int(totals["freezeCount"]),
            "freeze_s": round(totals["totalFreezesDuration"], 2),
            "freezes_per_min": round(60 * totals["freezeCount"] / window, 2) if window else None,
            "packets_lost": int(totals["packetsLost"]),
            "loss_pct": round(100 * totals["packetsLost"] / expected, 2) if expected else 0.0,
            "nacks": int(totals["nackCount"]),
            "plis": int(totals["pliCount"]),
            "firs": int(totals["firCount"]),
            "key_frames_decoded": int(totals["keyFramesDecoded"]),
            "frames_dropped": int(totals["framesDropped"]),
            "kbps": round(8 * totals["bytesReceived"] / 1000 / window, 1) if window else None,
            "jitter_buffer_ms": round(1000 * totals["jitterBufferDelay"] / emitted, 1)
            if emitted
            else None,
            "retransmitted_packets": int(totals["retransmittedPacketsReceived"]),
            "seen_s": round(covered, 1),
        }
    rtts = [
        pair["currentRoundTripTime"] * 1000
        for snapshot in snapshots
        if (pair := receive_pair(snapshot))
        and isinstance(pair.get("currentRoundTripTime"), int | float)
    ]
    last_tiles = snapshots[-1]["tiles"]
    return {
        "window_s": round(window, 1),
        "videos": videos,
        "rtt_ms": _spread(rtts),
        "indicator": {name: tile["quality"] for name, tile in last_tiles.items()},
        "tile_sizes": {
            name: f"{tile['shownWidth']}x{tile['shownHeight']}"
            for name, tile in last_tiles.items()
            if not tile["local"]
        },
    }


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "mean": round(statistics.fmean(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "last": round(values[-1], 1),
    }


OUTBOUND_COUNTERS = (
    "framesEncoded",
    "keyFramesEncoded",
    "bytesSent",
    "packetsSent",
    "retransmittedPacketsSent",
    "nackCount",
    "pliCount",
    "firCount",
)


def summarize_publisher(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Per encoding (rid): resolution, fps, kbit/s, key frames, the encoder's limitation; the
    publisher's bandwidth estimate (availableOutgoingBitrate) over the window."""
    if len(snapshots) < 2:
        return {"encodings": {}}
    window = snapshots[-1]["t"] - snapshots[0]["t"]
    series: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    estimates: list[float] = []
    rtts: list[float] = []
    for snapshot in snapshots:
        pc = send_pc(snapshot)
        if pc is None:
            continue
        for stat in pc["outboundVideo"]:
            series.setdefault(stat.get("rid") or "-", []).append((snapshot["t"], stat))
        pair = pc["pair"] or {}
        if isinstance(pair.get("availableOutgoingBitrate"), int | float):
            estimates.append(pair["availableOutgoingBitrate"] / 1000)
        if isinstance(pair.get("currentRoundTripTime"), int | float):
            rtts.append(pair["currentRoundTripTime"] * 1000)
    encodings = {}
    for rid, samples in sorted(series.items()):
        totals = dict.fromkeys(OUTBOUND_COUNTERS, 0.0)
        limitation: dict[str, float] = {}
        for piece in _pieces(samples):
            first, last = piece[0][1], piece[-1][1]
            for key in OUTBOUND_COUNTERS:
                totals[key] += _delta(first, last, key)
            before = first.get("qualityLimitationDurations") or {}
            after = last.get("qualityLimitationDurations") or {}
            for reason, seconds in after.items():
                limitation[reason] = limitation.get(reason, 0.0) + max(
                    0.0, _num(seconds) - _num(before.get(reason))
                )
        last = samples[-1][1]
        spent = sum(limitation.values())
        encodings[rid] = {
            "active": last.get("active"),
            "frame_width": last.get("frameWidth") or 0,
            "frame_height": last.get("frameHeight") or 0,
            "fps": round(totals["framesEncoded"] / window, 1) if window else None,
            "kbps": round(8 * totals["bytesSent"] / 1000 / window, 1) if window else None,
            "key_frames": int(totals["keyFramesEncoded"]),
            "nacks_received": int(totals["nackCount"]),
            "plis_received": int(totals["pliCount"]),
            "firs_received": int(totals["firCount"]),
            "retransmitted_packets": int(totals["retransmittedPacketsSent"]),
            "target_kbps": round(_num(last.get("targetBitrate")) / 1000, 1),
            "quality_limitation": last.get("qualityLimitationReason"),
            "quality_limitation_share": {
                reason: round(seconds / spent, 2)
                for reason, seconds in limitation.items()
                if seconds
            }
            if spent
            else {},
            "scalability_mode": last.get("scalabilityMode"),
            "encoder": last.get("encoderImplementation"),
        }
    return {
        "window_s": round(window, 1),
        "encodings": encodings,
        "estimate_kbps": _spread(estimates),
        "rtt_ms": _spread(rtts),
    }


# --- the SFU's side -------------------------------------------------------------------------
KNOWN_CONSUMER_FIELDS = {
    "consumer_id",
    "producer_id",
    "producer_peer_id",
    "kind",
    "source",
    "mid",
    "paused",
    "producer_paused",
    "forwarding",
    "packets",
    "bytes",
    "bitrate_bps",
    "packets_lost",
    "fraction_lost",
    "rtt_ms",
    "keyframe_requests",
    "retransmissions_sent",
}
LAYER_FIELDS = ("layer", "target_layer", "layer_switches")


def summarize_sfu(
    samples: list[tuple[float, dict[str, Any]]], names: dict[str, str]
) -> dict[str, Any]:
    """Per consumer (viewer <- publisher, video and audio) from the node's getStats of each
    peer over the window: rate, loss and RTT from the viewer's reports, key-frame requests,
    retransmissions; layer fields and any field this lab does not know yet, as the node gives
    them (the last value, and for counters the difference)."""
    if len(samples) < 2:
        return {}
    window = samples[-1][0] - samples[0][0]
    first_by_id: dict[str, dict[str, Any]] = {}
    last_by_id: dict[str, tuple[str, dict[str, Any]]] = {}
    producers: dict[str, dict[str, Any]] = {}
    first_producers: dict[str, dict[str, Any]] = {}
    estimates: dict[str, list[Any]] = {}
    for _, per_peer in samples:
        for peer_id, stats in per_peer.items():
            if not isinstance(stats, dict):
                continue
            for consumer in stats.get("consumers", []):
                first_by_id.setdefault(consumer["consumer_id"], consumer)
                last_by_id[consumer["consumer_id"]] = (peer_id, consumer)
            for producer in stats.get("producers", []):
                first_producers.setdefault(producer["producer_id"], producer)
                producers[producer["producer_id"]] = {**producer, "peer_id": peer_id}
            for transport in stats.get("transports", []):
                extra = {
                    k: v for k, v in transport.items() if "estimate" in k or "bwe" in k.lower()
                }
                downlink = transport.get("downlink")
                if isinstance(downlink, dict) and downlink.get("estimating"):
                    # The node's estimate of this viewer's downlink (sfu/downlink.py).
                    extra["estimate_kbps"] = round((downlink.get("estimate_bps") or 0) / 1000)
                    extra["acknowledged_kbps"] = round(
                        (downlink.get("acknowledged_bps") or 0) / 1000
                    )
                    extra["delay_state"] = downlink.get("delay_state")
                    extra["probes"] = downlink.get("probes")
                if extra:
                    estimates.setdefault(
                        f"{names.get(peer_id, peer_id)}:{transport.get('direction')}", []
                    ).append(extra)
    consumers = []
    for consumer_id, (peer_id, last) in last_by_id.items():
        first = first_by_id[consumer_id]
        entry: dict[str, Any] = {
            "viewer": names.get(peer_id, peer_id),
            "publisher": names.get(last.get("producer_peer_id", ""), last.get("producer_peer_id")),
            "kind": last.get("kind"),
            "source": last.get("source"),
            "forwarding": last.get("forwarding"),
            "kbps": round(8 * _delta(first, last, "bytes") / 1000 / window, 1) if window else None,
            "fraction_lost_last": last.get("fraction_lost"),
            "rtt_ms_last": last.get("rtt_ms"),
            "keyframe_requests": int(_delta(first, last, "keyframe_requests")),
            "retransmissions_sent": int(_delta(first, last, "retransmissions_sent")),
            "packets": int(_delta(first, last, "packets")),
        }
        for key, value in last.items():
            if key in KNOWN_CONSUMER_FIELDS:
                continue
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and key.endswith(("switches", "_count", "_sent", "_received", "requests"))
            ):
                delta = value - _num(first.get(key))
                entry[key] = int(delta) if isinstance(value, int) else delta
            else:
                entry[key] = value
        consumers.append(entry)
    producer_rows = []
    for producer_id, last in producers.items():
        first = first_producers[producer_id]
        row = {
            "publisher": names.get(last["peer_id"], last["peer_id"]),
            "kind": last.get("kind"),
            "source": last.get("source"),
            "kbps": round(8 * _delta(first, last, "bytes") / 1000 / window, 1) if window else None,
            "keyframe_requests": int(_delta(first, last, "keyframe_requests")),
            "nacks_sent": int(_delta(first, last, "nacks_sent")),
            "packets_lost": int(_delta(first, last, "packets_lost")),
            "duplicates_dropped": int(_delta(first, last, "duplicates_dropped")),
        }
        for key, value in last.items():
            if (
                key not in row
                and key not in {"producer_id", "peer_id", "codec", "mid"}
                and ("layer" in key or "rid" in key or "simulcast" in key or "encoding" in key)
            ):
                row[key] = value
        producer_rows.append(row)
    downlinks = {}
    for key, series in estimates.items():
        values = [e["estimate_kbps"] for e in series if "estimate_kbps" in e]
        if values:
            downlinks[key.split(":")[0]] = {
                "mean": round(sum(values) / len(values)),
                "min": min(values),
                "max": max(values),
            }
    return {
        "window_s": round(window, 1),
        "downlink_estimate_kbps": downlinks,
        "consumers": sorted(consumers, key=lambda c: (c["viewer"], c["publisher"], c["kind"])),
        "producers": sorted(producer_rows, key=lambda p: (p["publisher"], p["kind"])),
        "transport_estimates": estimates,
    }
