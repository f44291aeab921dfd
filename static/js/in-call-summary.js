// The pre-join page's "Ana and Bo are in this call" (rooms/in_call.py), kept current while the
// person is still on the pre-join: people come and go while someone checks their camera.
// Stops for good once the page is in the call (the sentence is hidden then).

const REFRESH_MS = 10_000;

const sentence = document.getElementById("in-call-summary");

async function refresh() {
  const response = await fetch(sentence.dataset.url, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!response.ok) return;
  const data = await response.json();
  // null: no call on any more, or this person may no longer see who is in it.
  if (typeof data.summary === "string") sentence.textContent = data.summary;
}

// The call's view (#in-call) covers the pre-join once the person is in; an ended page hides
// the pre-join altogether.
function onPreJoin() {
  const call = document.getElementById("in-call");
  return sentence.isConnected && sentence.offsetParent !== null && (!call || call.hidden);
}

if (sentence) {
  const timer = setInterval(() => {
    if (!onPreJoin()) {
      clearInterval(timer);
      sentence.dataset.refresh = "stopped"; // for the browser test: nothing more is fetched
      return;
    }
    if (document.visibilityState !== "visible") return;
    refresh().catch(() => {}); // a blip: the next tick tries again
  }, REFRESH_MS);
}
