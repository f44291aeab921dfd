// "Full screen", as in Meet's "More options": the call (#in-call, controls and panels with it)
// fills the screen through the Fullscreen API, and the button then reads "Exit full screen";
// the browser's own Escape leaves it too. Where the browser has no Fullscreen API (Safari on
// iPhone) the button is not offered. Leaving the call leaves full screen: the end screen and
// the pre-join are pages, not part of the call.

const ENTER_ICON = "M7 14H5v5h5v-2H7v-3zm-2-4h2V7h3V5H5v5zm12 7h-3v2h5v-5h-2v3zM14 5v2h3v3h2V5h-5z";
const EXIT_ICON = "M5 16h3v3h2v-5H5v2zm3-8H5v2h5V5H8v3zm6 11h2v-3h3v-2h-5v5zm2-11V5h-2v5h5V8h-3z";

export function setUpFullScreen(button, call, doc = document) {
  if (!button || !call) return;
  if (!doc.fullscreenEnabled || typeof call.requestFullscreen !== "function") {
    button.hidden = true;
    return;
  }
  const icon = button.querySelector("path");
  const sync = () => {
    const on = doc.fullscreenElement === call;
    const label = on ? "Exit full screen" : "Full screen";
    button.setAttribute("aria-label", label);
    button.setAttribute("aria-pressed", String(on));
    button.title = label;
    if (icon) icon.setAttribute("d", on ? EXIT_ICON : ENTER_ICON);
  };
  button.addEventListener("click", async () => {
    try {
      if (doc.fullscreenElement) await doc.exitFullscreen();
      else await call.requestFullscreen({ navigationUI: "hide" });
    } catch {
      // Refused by the browser (a policy, or not from a user's gesture): nothing changes.
    }
  });
  doc.addEventListener("fullscreenchange", sync);
  // The call view is hidden when the call ends (left, removed, ended for all).
  new MutationObserver(() => {
    if (call.hidden && doc.fullscreenElement === call) doc.exitFullscreen().catch(() => {});
  }).observe(call, { attributes: true, attributeFilter: ["hidden"] });
  sync();
}
