// Connection quality per participant from getStats(): packet loss over the last interval and
// the round-trip time of the active candidate pair. Remote peers are judged by what we receive
// from them (inbound-rtp of their consumers, matched by mid); we are judged by what the SFU
// reports about our sending (remote-inbound-rtp).

export function classify({ lossRatio, rttMs }) {
  if (lossRatio === null && rttMs === null) return "unknown";
  const loss = lossRatio ?? 0;
  const rtt = rttMs ?? 0;
  if (loss < 0.02 && rtt < 300) return "good";
  if (loss < 0.08 && rtt < 600) return "fair";
  return "poor";
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
    for (const [peerId, { received, lost }] of perPeer) {
      const total = received + lost;
      result.set(peerId, classify({ lossRatio: total ? lost / total : null, rttMs: recvRtt }));
    }
    if (send) {
      let lossRatio = null;
      let rtt = candidatePairRtt(send);
      for (const stat of send.values()) {
        if (stat.type === "remote-inbound-rtp") {
          if (typeof stat.fractionLost === "number") lossRatio = Math.max(lossRatio ?? 0, stat.fractionLost);
          if (typeof stat.roundTripTime === "number" && rtt === null) rtt = stat.roundTripTime * 1000;
        }
      }
      result.set("local", classify({ lossRatio, rttMs: rtt }));
    }
    return result;
  }
}
