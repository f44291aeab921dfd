// Init script for the browser tests: records every RTCPeerConnection the page creates (a
// transparent Proxy, so `instanceof` and static methods keep working) and offers helpers that
// sum getStats() counters. The tests read media facts from here, never from the UI's own state.
(() => {
  const Native = window.RTCPeerConnection;

  const connections = [];
  window.__peerConnections = connections;
  window.RTCPeerConnection = new Proxy(Native, {
    construct(target, args) {
      const pc = Reflect.construct(target, args);
      connections.push(pc);
      return pc;
    },
  });

  // Summed media counters over every open connection, plus per-track-kind detail.
  window.__mediaStats = async () => {
    const result = {
      videoFramesDecoded: 0, videoInbound: [], audioPacketsReceived: 0, audioInbound: [],
      videoFramesEncoded: 0, videoOutbound: [], connections: connections.length,
      states: connections.map((pc) => pc.connectionState),
    };
    for (const pc of connections) {
      if (pc.connectionState === "closed") continue;
      const report = await pc.getStats();
      for (const stat of report.values()) {
        if (stat.type === "inbound-rtp" && stat.kind === "video") {
          result.videoFramesDecoded += stat.framesDecoded || 0;
          result.videoInbound.push({
            mid: stat.mid, trackIdentifier: stat.trackIdentifier,
            framesDecoded: stat.framesDecoded || 0, frameWidth: stat.frameWidth || 0,
            frameHeight: stat.frameHeight || 0, packetsReceived: stat.packetsReceived || 0,
            bytesReceived: stat.bytesReceived || 0, freezeCount: stat.freezeCount || 0,
            totalFreezesDuration: stat.totalFreezesDuration || 0,
            keyFramesDecoded: stat.keyFramesDecoded || 0, pliCount: stat.pliCount || 0,
            headerBytesReceived: stat.headerBytesReceived || 0, timestamp: stat.timestamp,
          });
        } else if (stat.type === "inbound-rtp" && stat.kind === "audio") {
          result.audioPacketsReceived += stat.packetsReceived || 0;
          result.audioInbound.push({
            mid: stat.mid, trackIdentifier: stat.trackIdentifier, packetsReceived: stat.packetsReceived || 0,
          });
        } else if (stat.type === "outbound-rtp" && stat.kind === "video") {
          result.videoFramesEncoded += stat.framesEncoded || 0;
          result.videoOutbound.push({
            mid: stat.mid, rid: stat.rid || null, framesEncoded: stat.framesEncoded || 0,
            frameWidth: stat.frameWidth || 0, frameHeight: stat.frameHeight || 0,
            bytesSent: stat.bytesSent || 0, keyFramesEncoded: stat.keyFramesEncoded || 0,
            qualityLimitationReason: stat.qualityLimitationReason || null,
          });
        }
      }
    }
    return result;
  };

  // Decoded frames per remote track id (the id a <video>'s srcObject track carries).
  window.__framesByTrack = async () => {
    const frames = {};
    for (const pc of connections) {
      if (pc.connectionState === "closed") continue;
      const report = await pc.getStats();
      for (const stat of report.values()) {
        if (stat.type === "inbound-rtp" && stat.kind === "video" && stat.trackIdentifier) {
          frames[stat.trackIdentifier] = { frames: stat.framesDecoded || 0, width: stat.frameWidth || 0 };
        }
      }
    }
    return frames;
  };

  // Fraction of pixels that differ between two snapshots of a <video>, `gapMs` apart.
  window.__videoChange = async (video, gapMs = 1000) => {
    const grab = () => {
      const canvas = document.createElement("canvas");
      canvas.width = 160;
      canvas.height = 120;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      return context.getImageData(0, 0, canvas.width, canvas.height).data;
    };
    const first = grab();
    await new Promise((resolve) => setTimeout(resolve, gapMs));
    const second = grab();
    let changed = 0;
    for (let i = 0; i < first.length; i += 4) {
      const delta = Math.abs(first[i] - second[i]) + Math.abs(first[i + 1] - second[i + 1])
        + Math.abs(first[i + 2] - second[i + 2]);
      if (delta > 30) changed += 1;
    }
    return changed / (first.length / 4);
  };
})();
