// The call's two peer connections with the SFU (docs/protocol.md, docs/sfu.md).
//
// Send PC: the browser always offers. aiortc does no trickle ICE, so every offer is sent only
// once ICE gathering is complete (capped, so a slow interface cannot stall the call).
// Receive PC: the SFU always offers (server request "newConsumer"); answers are serialized so
// exactly one negotiation is in flight.
//
// Events: "consumer" {detail: consumer} when a remote track is ready, "consumerclosed"
// {detail: consumer}, "producerschanged", "connectionfailed" {detail: {which}}.

const ICE_GATHERING_CAP_MS = 3000;

// The camera's simulcast layers, lowest first as the SFU expects (docs/protocol.md): from a
// 1280x720 capture about 320x180, 640x360 and 1280x720. The SFU forwards each viewer the one
// its tile needs; a browser short of CPU or uplink stops sending the top ones by itself.
export const SIMULCAST_ENCODINGS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];
// Without simulcast one stream serves every viewer: the 720p capture is sent at about 480p.
const SINGLE_ENCODING = [{ scaleResolutionDownBy: 1.5, maxBitrate: 900_000 }];

function waitForIceGathering(pc, capMs = ICE_GATHERING_CAP_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onChange);
      resolve();
    };
    const onChange = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, capMs);
    pc.addEventListener("icegatheringstatechange", onChange);
  });
}

// Runs async jobs one after the other (a failed job does not block the next).
class SerialQueue {
  constructor() { this._tail = Promise.resolve(); }
  run(job) {
    const result = this._tail.then(job);
    this._tail = result.catch(() => {});
    return result;
  }
}

export class MediaSession extends EventTarget {
  constructor(signaling, { iceServers = [], simulcast = false } = {}) {
    super();
    this.signaling = signaling;
    this.iceServers = iceServers;
    this.simulcast = simulcast;
    this.sendPc = null;
    this.recvPc = null;
    // source ("mic" | "camera" | "screen") -> {transceiver, track, producerId, paused}
    this.outgoing = new Map();
    // consumerId -> consumer record from the server plus its track
    this.consumers = new Map();
    // consumerPaused/Resumed that overtook their newConsumer (it arrives while the offer is
    // still being applied): kept here and applied when the consumer is recorded.
    this._earlyPauseStates = new Map();
    this._sendQueue = new SerialQueue();
    this._recvQueue = new SerialQueue();
    this._closed = false;
  }

  _newPc(which) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && !this._closed) {
        this.dispatchEvent(new CustomEvent("connectionfailed", { detail: { which } }));
      }
    });
    return pc;
  }

  // --- sending -----------------------------------------------------------------------------
  // tracks: {mic?: MediaStreamTrack, camera?: MediaStreamTrack}; paused: {mic?, camera?}
  publish(tracks, paused = {}) {
    return this._sendQueue.run(async () => {
      if (!this.sendPc) this.sendPc = this._newPc("send");
      const stream = new MediaStream();
      for (const source of ["mic", "camera"]) {
        // A camera that is off still gets its (paused) producer, so turning it on later is a
        // replaceTrack + resumeProducer, not a renegotiation.
        const track = tracks[source] || null;
        if (track) stream.addTrack(track);
        const kind = source === "mic" ? "audio" : "video";
        const init = { direction: "sendonly", streams: [stream] };
        if (kind === "video") {
          const encodings = this.simulcast ? SIMULCAST_ENCODINGS : SINGLE_ENCODING;
          init.sendEncodings = encodings.map((encoding) => ({ ...encoding }));
        }
        const transceiver = this.sendPc.addTransceiver(track || kind, init);
        this.outgoing.set(source, {
          transceiver, track, producerId: null, paused: Boolean(paused[source]) || !track,
        });
      }
      await this._negotiateSend();
    });
  }

  startScreen(track) {
    return this._sendQueue.run(async () => {
      if (!this.sendPc) this.sendPc = this._newPc("send");
      const existing = this.outgoing.get("screen");
      if (existing && existing.producerId) throw new Error("already presenting");
      if (existing) {
        // m-lines are never reused by removal: put the idle transceiver back to work.
        await existing.transceiver.sender.replaceTrack(track);
        existing.transceiver.direction = "sendonly";
        existing.track = track;
      } else {
        const transceiver = this.sendPc.addTransceiver(track, {
          direction: "sendonly", streams: [new MediaStream([track])],
        });
        this.outgoing.set("screen", { transceiver, track, producerId: null, paused: false });
      }
      await this._negotiateSend();
    });
  }

  stopScreen() {
    return this._sendQueue.run(async () => {
      const screen = this.outgoing.get("screen");
      if (!screen || !screen.producerId) return;
      const producerId = screen.producerId;
      screen.producerId = null;
      screen.track.stop();
      await screen.transceiver.sender.replaceTrack(null);
      this.dispatchEvent(new Event("producerschanged"));
      try {
        await this.signaling.request("closeProducer", { producerId });
      } catch (error) {
        console.warn("closeProducer failed", error);
      }
    });
  }

  async _negotiateSend() {
    const pc = this.sendPc;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitForIceGathering(pc);
    const sources = {};
    for (const [source, out] of this.outgoing) {
      const mid = out.transceiver.mid;
      if (mid !== null && out.transceiver.direction === "sendonly") sources[mid] = source;
    }
    const answer = await this.signaling.request("produce", { sdp: pc.localDescription.sdp, sources });
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    for (const producer of answer.producers || []) {
      const out = this.outgoing.get(producer.source);
      if (out) out.producerId = producer.producerId;
    }
    for (const out of this.outgoing.values()) await this._keepResolution(out);
    // A source the user paused before its producer existed is paused now.
    for (const out of this.outgoing.values()) {
      if (out.paused && out.producerId) {
        await this.signaling.request("pauseProducer", { producerId: out.producerId });
      }
    }
    this.dispatchEvent(new Event("producerschanged"));
  }

  // One stream serves every viewer of a screen (and of a camera without simulcast), so one that
  // is scaled down under CPU or bandwidth pressure is scaled down for everyone: keep its
  // resolution and let the frame rate give way instead. A simulcast camera keeps the browser's
  // balance: its viewers already get the layer they need.
  async _keepResolution(out) {
    const sender = out.transceiver.sender;
    if (!sender.track || sender.track.kind !== "video" || !out.transceiver.mid) return;
    if (this.simulcast && out === this.outgoing.get("camera")) return;
    try {
      const parameters = sender.getParameters();
      if (parameters.degradationPreference === "maintain-resolution") return;
      parameters.degradationPreference = "maintain-resolution";
      await sender.setParameters(parameters);
    } catch (error) {
      console.debug("degradationPreference not supported", error);
    }
  }

  producerId(source) {
    const out = this.outgoing.get(source);
    return out ? out.producerId : null;
  }

  // Pause or resume a producer on the SFU so that others see it (consumerPaused/Resumed).
  setPaused(source, paused) {
    return this._sendQueue.run(async () => {
      const out = this.outgoing.get(source);
      if (!out) return;
      out.paused = paused;
      if (!out.producerId) return;
      await this.signaling.request(paused ? "pauseProducer" : "resumeProducer", { producerId: out.producerId });
    });
  }

  // Swap the track of a source (device change, camera back on) without renegotiating.
  async replaceTrack(source, track) {
    const out = this.outgoing.get(source);
    if (!out) return;
    await out.transceiver.sender.replaceTrack(track);
    out.track = track;
    await this._keepResolution(out);
  }

  // --- receiving ---------------------------------------------------------------------------
  // Server request newConsumer {negotiationId, sdp, consumers}: answer the SFU's offer.
  handleNewConsumer(data) {
    return this._recvQueue.run(async () => {
      if (this._closed) throw new Error("call closed");
      if (typeof data.sdp !== "string") throw new Error("newConsumer without sdp");
      if (!this.recvPc) {
        this.recvPc = this._newPc("recv");
      }
      const pc = this.recvPc;
      await pc.setRemoteDescription({ type: "offer", sdp: data.sdp });
      const byMid = new Map();
      for (const transceiver of pc.getTransceivers()) byMid.set(transceiver.mid, transceiver);
      const added = [];
      for (const consumer of data.consumers || []) {
        const transceiver = byMid.get(String(consumer.mid));
        if (!transceiver) {
          console.warn("newConsumer: no m-line for mid", consumer.mid);
          continue;
        }
        const record = { ...consumer, track: transceiver.receiver.track };
        if (this._earlyPauseStates.has(consumer.consumerId)) {
          record.producerPaused = this._earlyPauseStates.get(consumer.consumerId);
          this._earlyPauseStates.delete(consumer.consumerId);
        }
        this.consumers.set(consumer.consumerId, record);
        added.push(record);
      }
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      await waitForIceGathering(pc);
      if (!performance.getEntriesByName("meet:first-answer").length) performance.mark("meet:first-answer");
      // Tell the UI after this returns: the SFU resumes the consumer once it has the answer.
      queueMicrotask(() => {
        for (const record of added) this.dispatchEvent(new CustomEvent("consumer", { detail: record }));
      });
      return { sdp: pc.localDescription.sdp };
    });
  }

  closeConsumer(consumerId) {
    this._earlyPauseStates.delete(consumerId);
    const record = this.consumers.get(consumerId);
    if (!record) return;
    this.consumers.delete(consumerId);
    this.dispatchEvent(new CustomEvent("consumerclosed", { detail: record }));
  }

  setConsumerPaused(consumerId, producerPaused) {
    const record = this.consumers.get(consumerId);
    if (!record) {
      this._earlyPauseStates.set(consumerId, producerPaused);
      return null;
    }
    record.producerPaused = producerPaused;
    return record;
  }

  // --- stats and life cycle ---------------------------------------------------------------
  async stats() {
    const [send, recv] = await Promise.all([
      this.sendPc ? this.sendPc.getStats() : null,
      this.recvPc ? this.recvPc.getStats() : null,
    ]);
    return { send, recv };
  }

  // stopTracks=false keeps the local microphone and camera for a new session (rejoin).
  close({ stopTracks = true } = {}) {
    this._closed = true;
    for (const [source, out] of this.outgoing) {
      if (out.track && (stopTracks || source === "screen")) out.track.stop();
    }
    for (const record of this.consumers.values()) {
      this.dispatchEvent(new CustomEvent("consumerclosed", { detail: record }));
    }
    this.consumers.clear();
    this.outgoing.clear();
    if (this.sendPc) this.sendPc.close();
    if (this.recvPc) this.recvPc.close();
    this.sendPc = null;
    this.recvPc = null;
  }
}
