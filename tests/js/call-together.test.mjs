// Unit tests for the raised-hand rules of the call page (static/js/call/hands.js) with node's
// built-in runner: the queue is the server's and the highest revision wins; a hand lowers
// itself only after its owner has been the active speaker for the whole delay, without a break.
import assert from "node:assert/strict";
import { test } from "node:test";

const { AutoLower, HandQueue } = await import("../../static/js/call/hands.js");

const state = (revision, ...peerIds) => ({
  revision,
  queue: peerIds.map((peerId) => ({ peerId, raisedAt: "2026-01-01T00:00:00Z" })),
});

test("the queue keeps the server's order and positions", () => {
  const queue = new HandQueue();
  assert.equal(queue.apply(state(1, "ana", "bo", "cy")), true);
  assert.deepEqual(queue.peerIds, ["ana", "bo", "cy"]);
  assert.equal(queue.position("ana"), 1);
  assert.equal(queue.position("cy"), 3);
  assert.equal(queue.position("dee"), 0);
  assert.equal(queue.has("bo"), true);
});

test("an older snapshot arriving late is ignored; the same revision again is taken", () => {
  const queue = new HandQueue();
  queue.apply(state(5, "ana", "bo"));
  assert.equal(queue.apply(state(4, "ana")), false);
  assert.deepEqual(queue.peerIds, ["ana", "bo"]);
  assert.equal(queue.apply(state(5, "ana", "bo")), true); // a response and its notification
  assert.equal(queue.apply(state(6, "bo")), true);
  assert.deepEqual(queue.peerIds, ["bo"]);
});

test("a join's state replaces everything, whatever its revision", () => {
  const queue = new HandQueue();
  queue.apply(state(9, "ana"));
  queue.reset(state(2, "bo"));
  assert.deepEqual(queue.peerIds, ["bo"]);
});

test("someone who leaves loses their hand and the others move up", () => {
  const queue = new HandQueue();
  queue.apply(state(1, "ana", "bo", "cy"));
  assert.equal(queue.remove("bo"), true);
  assert.equal(queue.position("cy"), 2);
  assert.equal(queue.remove("nobody"), false);
});

test("malformed snapshots change nothing", () => {
  const queue = new HandQueue();
  queue.apply(state(1, "ana"));
  assert.equal(queue.apply(null), false);
  assert.equal(queue.apply({ revision: 2 }), false);
  queue.apply({ revision: 3, queue: [{ peerId: 7 }, null, { peerId: "bo" }] });
  assert.deepEqual(queue.peerIds, ["bo"]);
});

class FakeTimers {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.next = 1;
  }
  setTimeout(callback, ms) {
    const id = this.next++;
    this.timers.set(id, { at: this.now + ms, callback });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  advance(ms) {
    this.now += ms;
    for (const [id, timer] of [...this.timers]) {
      if (timer.at <= this.now) {
        this.timers.delete(id);
        timer.callback();
      }
    }
  }
}

const autoLower = (timers, onLower) => new AutoLower({
  seconds: 3, onLower, timers, now: () => timers.now,
});

test("the hand lowers itself once the owner has spoken for the delay", () => {
  const timers = new FakeTimers();
  let lowered = 0;
  const auto = autoLower(timers, () => { lowered += 1; });
  auto.update({ speaking: true, raised: true });
  timers.advance(2900);
  assert.equal(lowered, 0);
  auto.update({ speaking: true, raised: true }); // still speaking: the count is not restarted
  timers.advance(100);
  assert.equal(lowered, 1);
  timers.advance(10_000);
  assert.equal(lowered, 1);
});

test("pauses in speech add up; someone else speaking stops the count without losing it", () => {
  const timers = new FakeTimers();
  let lowered = 0;
  const auto = autoLower(timers, () => { lowered += 1; });
  for (let stretch = 0; stretch < 9; stretch += 1) {
    auto.update({ speaking: true, raised: true });
    timers.advance(300); // the SFU's window: we speak...
    auto.update({ speaking: false, raised: true });
    timers.advance(1200); // ...and pause (or someone else speaks)
  }
  assert.equal(lowered, 0); // 2.7 s spoken
  auto.update({ speaking: true, raised: true });
  timers.advance(299);
  assert.equal(lowered, 0);
  timers.advance(1);
  assert.equal(lowered, 1);
});

test("the count starts again when the hand goes down; nothing happens with the hand down", () => {
  const timers = new FakeTimers();
  let lowered = 0;
  const auto = autoLower(timers, () => { lowered += 1; });
  auto.update({ speaking: true, raised: true });
  timers.advance(2000);
  auto.update({ speaking: true, raised: false }); // lowered by hand meanwhile
  timers.advance(5000);
  assert.equal(lowered, 0);
  auto.update({ speaking: true, raised: true }); // raised again while speaking: 3 s from now
  timers.advance(2999);
  assert.equal(lowered, 0);
  timers.advance(1);
  assert.equal(lowered, 1);
  auto.update({ speaking: true, raised: false });
  timers.advance(10_000);
  assert.equal(lowered, 1);
});
