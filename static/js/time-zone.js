// The browser's time zone, proposed once (accounts/time_zones.py). base.html renders the
// proposal form hidden, on signed-in pages, while the person has never chosen a zone; this
// shows it when the browser's zone differs from the stored one. Either answer is posted (the
// zone to use, or the one kept) and the server never renders the proposal again. Without
// script, or where the browser names no zone, nothing is shown and the zone stays as it is.

// Names the same zone as UTC (browsers say "Etc/UTC", "UTC" or "GMT" for a machine on UTC).
const UTC_NAMES = new Set([
  "UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu",
  "GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0", "GMT+0", "GMT-0",
  "Etc/Greenwich", "Greenwich",
]);

const ZONE_PATTERN = /^[A-Za-z][A-Za-z0-9_+\-]*(\/[A-Za-z0-9_+\-]+)*$/;

/** The browser's zone, or "" where it names none (old browsers, privacy settings). */
export function browserTimeZone(intl = globalThis.Intl) {
  try {
    const zone = intl?.DateTimeFormat?.().resolvedOptions?.().timeZone;
    return typeof zone === "string" ? zone : "";
  } catch {
    return "";
  }
}

/** The zone to propose, or null: nothing when the browser names no zone, something that is
 * not a zone name, or the zone already stored (UTC under any of its names). The server checks
 * the name against the zones it knows; an unknown one is refused there and not proposed again
 * on this page. */
export function proposedTimeZone(detected, current) {
  if (typeof detected !== "string" || detected.length > 64 || !ZONE_PATTERN.test(detected)) {
    return null;
  }
  if (detected === current) return null;
  if (UTC_NAMES.has(detected) && UTC_NAMES.has(current)) return null;
  return detected;
}

/** How a zone reads in a sentence: "America/New_York" as "America/New York". */
export function zoneLabel(zone) {
  return zone.replaceAll("_", " ");
}

async function answer(form, submitter) {
  const status = form.querySelector("[data-time-zone-status]");
  const buttons = form.querySelectorAll("button");
  const body = new FormData(form, submitter); // before disabling: a disabled submitter sends nothing
  for (const button of buttons) button.disabled = true;
  let message;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok) {
      message = `Your time zone is ${zoneLabel(data.timeZone)}. You can change it in Settings.`;
    } else {
      message = data.error || "Your time zone could not be saved. You can set it in Settings.";
    }
  } catch {
    message = "Your time zone could not be saved. You can set it in Settings.";
  }
  form.querySelector("[data-time-zone-question]").hidden = true;
  for (const button of buttons) button.hidden = true;
  status.textContent = message;
  status.hidden = false;
  setTimeout(() => { form.hidden = true; }, 6000);
}

function start() {
  const form = document.getElementById("time-zone-proposal");
  if (!form) return;
  const zone = proposedTimeZone(browserTimeZone(), form.dataset.currentZone);
  if (!zone) return;
  const use = form.querySelector("[data-use-zone]");
  use.value = zone;
  for (const name of form.querySelectorAll("[data-zone-name]")) name.textContent = zoneLabel(zone);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    answer(form, event.submitter);
  });
  form.hidden = false;
}

if (typeof document !== "undefined") start();
