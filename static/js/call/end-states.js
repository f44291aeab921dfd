// Which screen the call ends on, and what it offers (issue 12.5). Pure: no DOM, no network.
//
// The server decides: its refusals at join (errorCode), its notifications (removed,
// meetingEnded) and its close codes (docs/protocol.md) name the state; the words come from the
// server too (rooms/end_states.py, rendered into the page as json_script "call-end-screens").
// What each screen offers follows the server's rules: "Rejoin" only where joining again can
// work, "Ask again" only where the lobby takes a new knock (a denied person may ask again:
// rooms.moderation.deny; so may one whose request timed out), "Sign in" only for a signed-out
// person.

// Every key rooms/end_states.py SCREENS has (a unit test there checks that they agree).
export const END_STATE_KEYS = Object.freeze([
  "left",
  "removed",
  "ended",
  "ended_for_all",
  "you_ended",
  "cancelled",
  "locked",
  "denied",
  "lobby_timeout",
  "not_allowed",
  "signed_out",
  "replaced",
  "failed",
]);

// join's errorCodes that no retry can fix; anything else leaves the pre-join up to try again.
const REFUSALS = Object.freeze({
  removed: "removed",
  meeting_ended: "ended",
  meeting_locked: "locked",
  not_allowed: "not_allowed",
  signed_out: "signed_out",
});

// Close codes that end the call (the signaling client retries none of them).
const CLOSE_CODES = Object.freeze({
  4401: "signed_out",
  4403: "removed",
  4404: "not_allowed",
  4409: "replaced",
  4410: "ended_for_all",
});

// The screen for a join refusal, or null when the refusal is not final.
export function endStateForRefusal(errorCode) {
  return Object.hasOwn(REFUSALS, errorCode) ? REFUSALS[errorCode] : null;
}

// The screen for a close of the signaling connection that is not retried.
export function endStateForClose(code) {
  return Object.hasOwn(CLOSE_CODES, code) ? CLOSE_CODES[code] : "failed";
}

// meetingEnded {reason?}: cancelled by the host, or ended for everyone (by us or by a host).
export function endStateForMeetingEnded(data, { endedByMe = false } = {}) {
  if (data && data.reason === "cancelled") return "cancelled";
  return endedByMe ? "you_ended" : "ended_for_all";
}

// The actions a screen offers besides "Return to home screen" (always there).
// `mayStartNextCall`: the server's rule, from the page (rooms.access.may_start_next_call).
export function endActions(key, { mayStartNextCall = false } = {}) {
  const rejoin =
    key === "left" ||
    key === "failed" ||
    key === "replaced" ||
    ((key === "ended_for_all" || key === "you_ended") && mayStartNextCall);
  const askAgain = key === "denied" || key === "lobby_timeout";
  return { rejoin, askAgain, signIn: key === "signed_out" };
}
