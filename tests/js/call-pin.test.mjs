// Unit tests for pinning (static/js/call/pin.js) with node's built-in runner: one person at a
// time, on this page's own layout; the pin goes when that person leaves; screen readers are
// told. The layout itself is checked in a browser (tests/e2e/test_people_panel.py).
import assert from "node:assert/strict";
import { test } from "node:test";

const { Pin } = await import("../../static/js/call/pin.js");

// Stands in for tiles.js's TileGrid: the pinned peer it is given and how often it re-lays out.
const fakeTiles = () => ({ pinnedPeerId: null, layouts: 0, layout() { this.layouts += 1; } });

test("pinning one person replaces the last one, and lays the grid out again", () => {
  const tiles = fakeTiles();
  const said = [];
  const pin = new Pin(tiles, { announce: (text) => said.push(text) });
  pin.pin("bo", "Bo");
  assert.equal(tiles.pinnedPeerId, "bo");
  assert.equal(pin.isPinned("bo"), true);
  pin.pin("cy", "Cy");
  assert.equal(pin.isPinned("bo"), false);
  assert.equal(pin.peerId, "cy");
  assert.equal(tiles.layouts, 2);
  assert.deepEqual(said, ["Pinned to your screen: Bo", "Pinned to your screen: Cy"]);
});

test("unpin clears it; unpinning with nothing pinned does nothing", () => {
  const tiles = fakeTiles();
  const pin = new Pin(tiles);
  pin.unpin();
  assert.equal(tiles.layouts, 0);
  pin.pin("bo");
  pin.unpin();
  assert.equal(tiles.pinnedPeerId, null);
  assert.equal(pin.isPinned(null), false);
  assert.equal(tiles.layouts, 2);
});

test("the pinned person leaving gives the stage back; someone else leaving does not", () => {
  const tiles = fakeTiles();
  const pin = new Pin(tiles);
  pin.pin("bo");
  pin.forget("cy");
  assert.equal(pin.peerId, "bo");
  pin.forget("bo");
  assert.equal(pin.peerId, null);
});
