// Unit tests for static/js/time-zone.js's pure parts (what to propose from the browser's zone),
// with node's built-in runner. The page wiring is covered by the browser test
// tests/e2e/test_names_and_time_zones.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const { browserTimeZone, proposedTimeZone, zoneLabel } = await import("../../static/js/time-zone.js");

test("a browser zone that differs from the stored one is proposed", () => {
  assert.equal(proposedTimeZone("Europe/Berlin", "UTC"), "Europe/Berlin");
  assert.equal(proposedTimeZone("America/Argentina/Buenos_Aires", "UTC"), "America/Argentina/Buenos_Aires");
  assert.equal(proposedTimeZone("Etc/GMT-14", "UTC"), "Etc/GMT-14");
});

test("the stored zone, under any of UTC's names, is not proposed", () => {
  assert.equal(proposedTimeZone("Europe/Berlin", "Europe/Berlin"), null);
  assert.equal(proposedTimeZone("Etc/UTC", "UTC"), null);
  assert.equal(proposedTimeZone("GMT", "UTC"), null);
  assert.equal(proposedTimeZone("UTC", "Etc/UTC"), null);
});

test("no zone, or something that is not a zone name, falls back to proposing nothing", () => {
  for (const detected of [undefined, null, "", 42, "Europe/<b>", "../etc", "x".repeat(65), "Europe Berlin"]) {
    assert.equal(proposedTimeZone(detected, "UTC"), null, String(detected));
  }
});

test("the browser's zone is read from Intl, and is empty where Intl has none or fails", () => {
  const intl = (zone) => ({ DateTimeFormat: () => ({ resolvedOptions: () => ({ timeZone: zone }) }) });
  assert.equal(browserTimeZone(intl("Asia/Tokyo")), "Asia/Tokyo");
  assert.equal(browserTimeZone(intl(undefined)), "");
  assert.equal(browserTimeZone(null), "");
  assert.equal(browserTimeZone({ DateTimeFormat: () => { throw new RangeError("no"); } }), "");
});

test("a zone reads with spaces for underscores", () => {
  assert.equal(zoneLabel("America/New_York"), "America/New York");
});
