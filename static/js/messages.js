// Flash messages (templates/base.html, issue 12.10). The × dismisses one; every message but
// an error fades out after FADE_AFTER_MS, the clock held while the pointer is over it or focus
// is in it (someone reading or about to press ×). Without script the messages simply stay and
// no × is shown (it is rendered hidden).

export const FADE_AFTER_MS = 6000;
// As long as the opacity transition in static/css/meet.css (none with reduced motion: then the
// message goes at once when the timer runs out).
const FADE_MS = 400;

function reducedMotion() {
  return globalThis.matchMedia?.("(prefers-reduced-motion: reduce)").matches ?? false;
}

/** Removes a message; focus that was on its × goes to the next message's ×, else to main. */
export function dismiss(message) {
  if (!message.isConnected) return;
  const box = message.parentElement;
  const hadFocus = message.contains(document.activeElement);
  const next = message.nextElementSibling?.querySelector("[data-message-dismiss]");
  message.remove();
  if (box && !box.querySelector(".message")) box.remove();
  if (!hadFocus) return;
  if (next) {
    next.focus();
    return;
  }
  const main = document.getElementById("main");
  if (main) {
    if (!main.hasAttribute("tabindex")) main.setAttribute("tabindex", "-1");
    main.focus();
  }
}

function fadeOut(message) {
  if (reducedMotion()) {
    dismiss(message);
    return;
  }
  message.classList.add("message-fading");
  setTimeout(() => dismiss(message), FADE_MS);
}

function fadeLater(message, after) {
  let timer = null;
  let hovered = false;
  let focused = false;
  const start = () => {
    clearTimeout(timer);
    if (!hovered && !focused) timer = setTimeout(() => fadeOut(message), after);
  };
  message.addEventListener("pointerenter", () => { hovered = true; clearTimeout(timer); });
  message.addEventListener("pointerleave", () => { hovered = false; start(); });
  message.addEventListener("focusin", () => { focused = true; clearTimeout(timer); });
  message.addEventListener("focusout", (event) => {
    focused = message.contains(event.relatedTarget);
    start();
  });
  start();
}

/** Wires up every message under `root`: shows its ×, and lets all but errors fade. */
export function setUpMessages(root = document, { fadeAfter = FADE_AFTER_MS } = {}) {
  for (const message of root.querySelectorAll("[data-messages] .message")) {
    const button = message.querySelector("[data-message-dismiss]");
    if (button) {
      button.hidden = false;
      button.addEventListener("click", () => dismiss(message));
    }
    if (message.hasAttribute("data-message-fades")) fadeLater(message, fadeAfter);
  }
}

if (typeof document !== "undefined") setUpMessages();
