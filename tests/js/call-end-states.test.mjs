// Unit tests for static/js/call/end-states.js: which screen the call ends on and what it offers
// (issue 12.5). `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  END_STATE_KEYS, endActions, endStateForClose, endStateForMeetingEnded, endStateForRefusal,
} from "../../static/js/call/end-states.js";

test("final join refusals name their screen; the lobby and passing errors do not", () => {
  assert.equal(endStateForRefusal("removed"), "removed");
  assert.equal(endStateForRefusal("meeting_ended"), "ended");
  assert.equal(endStateForRefusal("meeting_locked"), "locked");
  assert.equal(endStateForRefusal("not_allowed"), "not_allowed");
  assert.equal(endStateForRefusal("signed_out"), "signed_out");
  for (const passing of ["lobby", "sfu_timeout", "peer_id_taken", "busy", "toString", undefined]) {
    assert.equal(endStateForRefusal(passing), null, String(passing));
  }
});

test("close codes that are not retried map to the server's meaning, anything else is a lost connection", () => {
  assert.equal(endStateForClose(4401), "signed_out");
  assert.equal(endStateForClose(4403), "removed");
  assert.equal(endStateForClose(4404), "not_allowed");
  assert.equal(endStateForClose(4409), "replaced");
  assert.equal(endStateForClose(4410), "ended_for_all");
  assert.equal(endStateForClose(4413), "failed");
  assert.equal(endStateForClose(1006), "failed");
});

test("meetingEnded says cancelled, or who ended it for everyone", () => {
  assert.equal(endStateForMeetingEnded({ reason: "cancelled" }), "cancelled");
  assert.equal(endStateForMeetingEnded({ reason: "cancelled" }, { endedByMe: true }), "cancelled");
  assert.equal(endStateForMeetingEnded({}), "ended_for_all");
  assert.equal(endStateForMeetingEnded(null), "ended_for_all");
  assert.equal(endStateForMeetingEnded({}, { endedByMe: true }), "you_ended");
});

test("Rejoin only where joining again can work", () => {
  for (const key of ["left", "failed", "replaced"]) assert.equal(endActions(key).rejoin, true, key);
  for (const key of ["removed", "ended", "cancelled", "locked", "denied", "not_allowed", "signed_out"]) {
    assert.equal(endActions(key, { mayStartNextCall: true }).rejoin, false, key);
  }
  // After an end for everyone: the server's restart rule, handed over by the page.
  for (const key of ["ended_for_all", "you_ended"]) {
    assert.equal(endActions(key, { mayStartNextCall: true }).rejoin, true, key);
    assert.equal(endActions(key, { mayStartNextCall: false }).rejoin, false, key);
    assert.equal(endActions(key).rejoin, false, key);
  }
});

test("Ask again after the lobby's no or its time-out, Sign in when signed out, nothing else", () => {
  for (const key of END_STATE_KEYS) {
    const actions = endActions(key, { mayStartNextCall: true });
    assert.equal(actions.askAgain, key === "denied" || key === "lobby_timeout", key);
    assert.equal(actions.signIn, key === "signed_out", key);
  }
});

test("every key the mappings produce is a listed screen", () => {
  const produced = [
    ...["removed", "meeting_ended", "meeting_locked", "not_allowed", "signed_out"].map(endStateForRefusal),
    ...[4401, 4403, 4404, 4409, 4410, 1006].map(endStateForClose),
    endStateForMeetingEnded({ reason: "cancelled" }), endStateForMeetingEnded({}),
    endStateForMeetingEnded({}, { endedByMe: true }), "left", "denied",
  ];
  for (const key of produced) assert.ok(END_STATE_KEYS.includes(key), key);
  assert.equal(new Set(END_STATE_KEYS).size, END_STATE_KEYS.length);
});
