// Connection quality per participant from getStats(): packet loss over the last interval and
// the round-trip time of the active candidate pair. The badge names the side whose link is the
// problem, as Meet's does: loss that every remote peer's media shows at once (the least of
// their losses, when two or more send) is our own downlink's, so it counts against us, with our
// receiving round-trip time, and only what a peer loses beyond it counts against that peer. We
// are also judged by what the SFU reports about our sending (remote-inbound-rtp). With a single
// remote peer the two cannot be told apart and its losses count against it — unless the SFU
// has said our downlink is what holds our videos back (`downlinkLimited`: its estimate of our
// link, from our browser's transport-wide feedback): then every loss is ours, and our own badge
// is at best "fair".

export function classify({ lossRatio, rttMs }) {
  if (lossRatio === null && rttMs === null) return "unknown";
  const loss = lossRatio ?? 0;
  const rtt = rttMs ?? 0;
  if (loss < 0.02 && rtt < 300) return "good";
  if (loss < 0.08 && rtt < 600) return "fair";
  return "poor";
}

const ORDER = ["unknown", "good", "fair", "poor"];

// The worse of two qualities ("unknown" only when both are).
export function worst(a, b) {
  return ORDER.indexOf(a) >= ORDER.indexOf(b) ? a : b;
}

function candidatePairRtt(report) {
  if (!report) return null;
  for (const stat of report.values()) {
    if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded"
        && typeof stat.currentRoundTripTime === "number") {
      return stat.currentRoundTripTime * 1000;
    }
  }
  return null;
}

export class QualityMonitor {
  constructor() {
    this.previous = new Map(); // key -> {received, lost}
    this.downlinkLimited = false; // the SFU's downlinkLimited notification
  }

  _lossDelta(key, received, lost) {
    const before = this.previous.get(key) || { received: 0, lost: 0 };
    this.previous.set(key, { received, lost });
    const dReceived = Math.max(0, received - before.received);
    const dLost = Math.max(0, lost - before.lost);
    return { dReceived, dLost };
  }

  // consumers: iterable of {consumerId, peerId, mid, producerPaused}. Returns Map peerId -> quality,
  // plus "local" for our own sending.
  evaluate({ send, recv }, consumers) {
    const result = new Map();
    const recvRtt = candidatePairRtt(recv);
    const byMid = new Map();
    if (recv) {
      for (const stat of recv.values()) {
        if (stat.type === "inbound-rtp" && stat.mid !== undefined) byMid.set(String(stat.mid), stat);
      }
    }
    const perPeer = new Map();
    for (const consumer of consumers) {
      const stat = byMid.get(String(consumer.mid));
      if (!stat || consumer.producerPaused) continue;
      const { dReceived, dLost } = this._lossDelta(
        `in:${consumer.consumerId}`, stat.packetsReceived || 0, stat.packetsLost || 0,
      );
      const sum = perPeer.get(consumer.peerId) || { received: 0, lost: 0 };
      sum.received += dReceived;
      sum.lost += dLost;
      perPeer.set(consumer.peerId, sum);
    }
    const lossByPeer = new Map();
    for (const [peerId, { received, lost }] of perPeer) {
      const total = received + lost;
      lossByPeer.set(peerId, total ? lost / total : null);
    }
    const measured = [...lossByPeer.values()].filter((loss) => loss !== null);
    // What all of them lose, we lose: our downlink (all of it, when the SFU says so).
    let ownLoss = measured.length >= 2 ? Math.min(...measured) : 0;
    if (this.downlinkLimited && measured.length) ownLoss = Math.max(...measured);
    for (const [peerId, loss] of lossByPeer) {
      result.set(peerId, classify({ lossRatio: loss === null ? null : loss - ownLoss, rttMs: null }));
    }
    let receiving = classify({
      lossRatio: measured.length ? ownLoss : null,
      rttMs: recvRtt,
    });
    if (this.downlinkLimited) receiving = worst(receiving, "fair");
    if (send) {
      let lossRatio = null;
      let rtt = candidatePairRtt(send);
      for (const stat of send.values()) {
        if (stat.type === "remote-inbound-rtp") {
          if (typeof stat.fractionLost === "number") lossRatio = Math.max(lossRatio ?? 0, stat.fractionLost);
          if (typeof stat.roundTripTime === "number" && rtt === null) rtt = stat.roundTripTime * 1000;
        }
      }
      result.set("local", worst(classify({ lossRatio, rttMs: rtt }), receiving));
    } else {
      result.set("local", receiving);
    }
    return result;
  }
}
