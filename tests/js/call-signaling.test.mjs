// Unit tests for static/js/call/signaling.js and the pure helpers of the call client, with
// node's built-in runner (`node --test tests/js/`). A scripted WebSocket stands in for the
// network; the client under test is the real module.
import assert from "node:assert/strict";
import { test } from "node:test";

class ScriptedSocket extends EventTarget {
  static OPEN = 1;
  static instances = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    ScriptedSocket.instances.push(this);
  }
  open() {
    this.readyState = ScriptedSocket.OPEN;
    this.dispatchEvent(new Event("open"));
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  serverSends(message) {
    const event = new Event("message");
    event.data = typeof message === "string" ? message : JSON.stringify(message);
    this.dispatchEvent(event);
  }
  close(code = 1000) { this.serverCloses(code); }
  serverCloses(code) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    const event = new Event("close");
    event.code = code;
    this.dispatchEvent(event);
  }
}
globalThis.WebSocket = ScriptedSocket;
globalThis.CustomEvent ??= class extends Event {
  constructor(type, { detail } = {}) { super(type); this.detail = detail; }
};

const { SignalingClient } = await import("../../static/js/call/signaling.js");
const { bestColumns, fitFor, tileSize } = await import("../../static/js/call/tiles.js");
const { classify, QualityMonitor, worst } = await import("../../static/js/call/quality.js");

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

async function connected(options = {}) {
  ScriptedSocket.instances = [];
  const client = new SignalingClient("ws://test/ws/rooms/abc/", { backoffInitialMs: 5, backoffMaxMs: 20, ...options });
  const opening = client.connect();
  ScriptedSocket.instances[0].open();
  await opening;
  return client;
}

test("a response resolves the request with the same id", async () => {
  const client = await connected();
  const socket = ScriptedSocket.instances[0];
  const pending = client.request("join", { peerId: "p1" });
  const sent = socket.sent[0];
  assert.equal(sent.request, true);
  assert.equal(sent.method, "join");
  socket.serverSends({ response: true, id: sent.id, ok: true, data: { role: "host" } });
  assert.deepEqual(await pending, { role: "host" });
});

test("an error response rejects with the server's code", async () => {
  const client = await connected();
  const socket = ScriptedSocket.instances[0];
  const pending = client.request("produce", {});
  socket.serverSends({ response: true, id: socket.sent[0].id, ok: false, errorCode: "bad_sdp", errorReason: "no" });
  await assert.rejects(pending, (error) => error.code === "bad_sdp");
});

test("server requests are answered on the same socket, errors included", async () => {
  const client = await connected();
  const socket = ScriptedSocket.instances[0];
  client.onRequest = async (method, data) => {
    if (method === "newConsumer") return { sdp: `answer to ${data.sdp}` };
    throw Object.assign(new Error("nope"), { code: "unknown_method" });
  };
  socket.serverSends({ request: true, id: 7, method: "newConsumer", data: { sdp: "offer" } });
  socket.serverSends({ request: true, id: 8, method: "bogus", data: {} });
  await tick();
  assert.deepEqual(socket.sent[0], { response: true, id: 7, ok: true, data: { sdp: "answer to offer" } });
  assert.equal(socket.sent[1].ok, false);
  assert.equal(socket.sent[1].errorCode, "unknown_method");
});

test("garbage frames are ignored and notifications are dispatched", async () => {
  const client = await connected();
  const socket = ScriptedSocket.instances[0];
  const seen = [];
  client.addEventListener("notification", (event) => seen.push(event.detail));
  socket.serverSends("not json{");
  socket.serverSends("null");
  socket.serverSends({ notification: true, method: "peerClosed", data: { peerId: "p2" } });
  assert.deepEqual(seen, [{ method: "peerClosed", data: { peerId: "p2" } }]);
});

test("a dropped connection rejects pending requests and reconnects with backoff", async () => {
  const client = await connected();
  const reopened = [];
  client.addEventListener("open", (event) => reopened.push(event.detail.reconnected));
  const pending = client.request("getStats");
  ScriptedSocket.instances[0].serverCloses(1006);
  await assert.rejects(pending, (error) => error.code === "disconnected");
  assert.equal(client.connected, false);
  // First retry fails too, the next one opens.
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    while (ScriptedSocket.instances.length <= attempt) await tick(2);
    if (attempt === 1) ScriptedSocket.instances[1].serverCloses(1006);
    else ScriptedSocket.instances[2].open();
  }
  assert.deepEqual(reopened, [true]);
  assert.equal(client.connected, true);
});

test("permanent close codes stop reconnecting and say why", async () => {
  const client = await connected();
  const failures = [];
  client.addEventListener("failed", (event) => failures.push(event.detail));
  ScriptedSocket.instances[0].serverCloses(4410);
  await tick(50);
  assert.equal(ScriptedSocket.instances.length, 1);
  assert.equal(failures.length, 1);
  assert.match(failures[0].reason, /ended/);
});

test("giving up after the reconnect window reports a failure", async () => {
  const client = await connected({ maxReconnectMs: 30 });
  const failures = [];
  client.addEventListener("failed", (event) => failures.push(event.detail));
  ScriptedSocket.instances[0].serverCloses(1006);
  while (failures.length === 0) {
    const last = ScriptedSocket.instances.at(-1);
    if (last.readyState !== 3) last.serverCloses(1006);
    await tick(5);
  }
  assert.match(failures[0].reason, /Lost the connection/);
});

test("the grid keeps two people side by side on a wide screen and stacks them on a phone", () => {
  assert.equal(bestColumns(1, 1280, 640), 1);
  assert.equal(bestColumns(2, 1280, 640), 2);
  assert.equal(bestColumns(2, 344, 580), 1);
  assert.equal(bestColumns(3, 344, 580), 1);
  assert.equal(bestColumns(4, 1280, 640), 2);
  assert.equal(bestColumns(9, 1280, 640), 3);
});

test("tiles are the largest 16:9 boxes that fit, whatever the stage's shape", () => {
  // A wide stage: two side by side, each limited by the width.
  assert.deepEqual(tileSize(2, 1264, 640), { cols: 2, rows: 1, width: 628, height: 353 });
  // Three on a laptop: two above, one below, limited by the height.
  const three = tileSize(3, 1264, 640);
  assert.deepEqual([three.cols, three.rows], [2, 2]);
  assert.ok(three.height * 2 + 8 <= 640 && three.width * 2 + 8 <= 1264);
  // A phone's tall stage: stacked, as wide as the stage.
  assert.deepEqual(tileSize(3, 344, 600), { cols: 1, rows: 3, width: 344, height: 193 });
  for (const size of [three, tileSize(7, 900, 900), tileSize(1, 300, 700)]) {
    assert.ok(Math.abs(size.width / size.height - 16 / 9) < 0.02, JSON.stringify(size));
  }
});

test("a picture fills its box only when that crops little; a screen is always whole", () => {
  assert.equal(fitFor(1280, 720), "cover");
  assert.equal(fitFor(640, 480), "cover"); // a 4:3 webcam loses a quarter of its height
  assert.equal(fitFor(720, 1280), "contain"); // a portrait phone camera
  assert.equal(fitFor(720, 720), "contain"); // a square picture would lose 44 %
  assert.equal(fitFor(1280, 720, 16 / 9, { screen: true }), "contain");
  assert.equal(fitFor(0, 0), "cover"); // no frame yet
});

test("connection quality follows loss and round-trip time", () => {
  assert.equal(classify({ lossRatio: null, rttMs: null }), "unknown");
  assert.equal(classify({ lossRatio: 0, rttMs: 20 }), "good");
  assert.equal(classify({ lossRatio: 0.05, rttMs: 20 }), "fair");
  assert.equal(classify({ lossRatio: 0.01, rttMs: 450 }), "fair");
  assert.equal(classify({ lossRatio: 0.2, rttMs: 20 }), "poor");
  assert.equal(worst("good", "poor"), "poor");
  assert.equal(worst("unknown", "fair"), "fair");
});

// getStats-shaped reports: inbound-rtp per mid (cumulative counters) and the receive pair's RTT.
function receiveReport(byMid, rttSeconds = 0.02) {
  const report = new Map();
  for (const [mid, [received, lost]] of Object.entries(byMid)) {
    report.set(`in${mid}`, { type: "inbound-rtp", mid, packetsReceived: received, packetsLost: lost });
  }
  report.set("pair", {
    type: "candidate-pair", nominated: true, state: "succeeded", currentRoundTripTime: rttSeconds,
  });
  return report;
}

const CONSUMERS = [
  { consumerId: "a", peerId: "ana", mid: "1" },
  { consumerId: "b", peerId: "bo", mid: "2" },
];

test("loss every peer shows at once is blamed on our own link, not on them", () => {
  const monitor = new QualityMonitor();
  monitor.evaluate({ send: null, recv: receiveReport({ 1: [0, 0], 2: [0, 0] }) }, CONSUMERS);
  // Both lose a fifth of what they send us: our downlink.
  const result = monitor.evaluate(
    { send: null, recv: receiveReport({ 1: [800, 200], 2: [790, 210] }, 0.25) }, CONSUMERS,
  );
  assert.equal(result.get("ana"), "good");
  assert.equal(result.get("bo"), "good");
  assert.equal(result.get("local"), "poor");
});

test("loss only one peer shows is blamed on that peer", () => {
  const monitor = new QualityMonitor();
  monitor.evaluate({ send: null, recv: receiveReport({ 1: [0, 0], 2: [0, 0] }) }, CONSUMERS);
  const result = monitor.evaluate(
    { send: null, recv: receiveReport({ 1: [1000, 0], 2: [800, 200] }) }, CONSUMERS,
  );
  assert.equal(result.get("ana"), "good");
  assert.equal(result.get("bo"), "poor");
  assert.equal(result.get("local"), "good");
});

test("when the SFU says our downlink holds our videos back, the losses are ours", () => {
  const monitor = new QualityMonitor();
  monitor.evaluate({ send: null, recv: receiveReport({ 1: [0, 0], 2: [0, 0] }) }, CONSUMERS);
  // One peer's video loses a fifth, the other's nothing: alone, that blames the peer.
  monitor.downlinkLimited = true;
  const result = monitor.evaluate(
    { send: null, recv: receiveReport({ 1: [1000, 0], 2: [800, 200] }) }, CONSUMERS,
  );
  assert.equal(result.get("ana"), "good");
  assert.equal(result.get("bo"), "good");
  assert.equal(result.get("local"), "poor");
  // No loss at all: still "fair" for us while the SFU says our link is short.
  const clean = monitor.evaluate(
    { send: null, recv: receiveReport({ 1: [2000, 0], 2: [1800, 200] }) }, CONSUMERS,
  );
  assert.equal(clean.get("local"), "fair");
  monitor.downlinkLimited = false;
  const after = monitor.evaluate(
    { send: null, recv: receiveReport({ 1: [3000, 0], 2: [2800, 200] }) }, CONSUMERS,
  );
  assert.equal(after.get("local"), "good");
});
