// Unit tests for the layout decisions (static/js/call/layout.js) with node's built-in runner:
// the tile limit and its phone cap, which people get tiles and in what order, the "N others"
// count, speakers swapped in for the least recently active, and who takes the stage (one's own
// pin over the host's spotlight over the speaker). The browser side is tests/e2e/test_layouts.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const {
  chooseShown, effectiveTileLimit, parseLayoutChoice, planLayout, stagePerson,
} = await import("../../static/js/call/layout.js");

const spoke = (...ids) => new Map(ids.map((id, index) => [id, index + 1]));

test("the tile limit: the default, kept in range, capped at 9 on a phone", () => {
  assert.equal(effectiveTileLimit(undefined, 1280), 16);
  assert.equal(effectiveTileLimit(49, 1280), 49);
  assert.equal(effectiveTileLimit(100, 1280), 49);
  assert.equal(effectiveTileLimit(1, 1280), 2);
  assert.equal(effectiveTileLimit(30, 360), 9);
  assert.equal(effectiveTileLimit(3, 360), 3);
  assert.equal(effectiveTileLimit("nonsense", 1280), 16);
});

test("a kept choice is read back, anything unreadable gives the defaults", () => {
  assert.deepEqual(parseLayoutChoice('{"mode":"sidebar","tiles":9}'), { mode: "sidebar", tiles: 9 });
  assert.deepEqual(parseLayoutChoice('{"mode":"mosaic","tiles":-3}'), { mode: "auto", tiles: 16 });
  assert.deepEqual(parseLayoutChoice("{not json"), { mode: "auto", tiles: 16 });
  assert.deepEqual(parseLayoutChoice(null), { mode: "auto", tiles: 16 });
  assert.deepEqual(parseLayoutChoice('{"mode":"tiled","tiles":2}'), { mode: "tiled", tiles: 2 });
});

test("everyone fits: everyone has a tile, in join order, and no 'others' tile", () => {
  const plan = planLayout({ mode: "tiled", people: ["me", "a", "b"], selfId: "me", limit: 6 });
  assert.equal(plan.arrangement, "grid");
  assert.deepEqual(plan.shown, ["me", "a", "b"]);
  assert.equal(plan.others, 0);
});

test("over the limit: limit - 1 people and an 'N others' tile; oneself always in", () => {
  const people = ["me", "a", "b", "c", "d"];
  const plan = planLayout({ mode: "auto", people, selfId: "me", limit: 3 });
  assert.deepEqual(plan.shown, ["me", "a"]);
  assert.deepEqual(plan.hidden, ["b", "c", "d"]);
  assert.equal(plan.others, 3);
  assert.equal(plan.arrangement, "grid");
});

test("recent speakers fill free places first", () => {
  const people = ["me", "a", "b", "c", "d"];
  const plan = planLayout({ mode: "tiled", people, selfId: "me", limit: 4, lastSpoke: spoke("c", "d") });
  assert.deepEqual(plan.shown, ["me", "d", "c"]);
  assert.equal(plan.others, 2);
});

test("a new speaker takes the place of the shown person who spoke least recently", () => {
  const people = ["me", "a", "b", "c", "d"];
  // Shown: me, a, b; a spoke after b. c starts speaking: b (least recent) gives up its place.
  const previous = ["me", "a", "b"];
  const plan = planLayout({
    mode: "tiled", people, selfId: "me", limit: 4, previous, activeSpeakerId: "c", lastSpoke: spoke("b", "a", "c"),
  });
  assert.deepEqual(plan.shown, ["me", "a", "c"]);
  assert.deepEqual(plan.hidden, ["b", "d"]);
  // Nobody spoke among those shown: the one who joined last goes.
  const quiet = chooseShown({ pool: people, slots: 4, previous, required: ["me", "d"], lastSpoke: spoke("d") });
  assert.deepEqual(quiet.shown, ["me", "a", "d"]);
});

test("who is shown stays put while nothing asks for a change", () => {
  const people = ["me", "a", "b", "c", "d"];
  const first = planLayout({ mode: "tiled", people, selfId: "me", limit: 3, activeSpeakerId: "c", lastSpoke: spoke("c") });
  assert.deepEqual(first.shown, ["me", "c"]);
  // c stops speaking, a newcomer joins: c keeps the place.
  const second = planLayout({
    mode: "tiled", people: [...people, "e"], selfId: "me", limit: 3, lastSpoke: spoke("c"), previous: first.shown,
  });
  assert.deepEqual(second.shown, ["me", "c"]);
  assert.equal(second.others, 4);
  // Someone shown leaves: the free place goes to the next in line.
  const third = planLayout({
    mode: "tiled", people: ["me", "a", "b", "d"], selfId: "me", limit: 3, lastSpoke: spoke("c"), previous: second.shown,
  });
  assert.deepEqual(third.shown, ["me", "a"]);
});

test("a lower limit drops the least recently active first", () => {
  const result = chooseShown({
    pool: ["me", "a", "b", "c", "d"], slots: 3, previous: ["me", "a", "b", "c"], required: ["me"], lastSpoke: spoke("a", "c"),
  });
  assert.deepEqual(result.shown, ["me", "c"]);
});

test("the stage: one's own pin wins over the host's spotlight, which wins over the speaker", () => {
  const people = ["me", "a", "b", "c"];
  const lastSpoke = spoke("b");
  assert.equal(stagePerson({ people, selfId: "me", pinnedId: "a", spotlightId: "c", lastSpoke, followSpeaker: true }), "a");
  assert.equal(stagePerson({ people, selfId: "me", spotlightId: "c", lastSpoke, followSpeaker: true }), "c");
  assert.equal(stagePerson({ people, selfId: "me", lastSpoke, followSpeaker: true }), "b");
  assert.equal(stagePerson({ people, selfId: "me", followSpeaker: true }), "a");
  assert.equal(stagePerson({ people: ["me"], selfId: "me", followSpeaker: true }), "me");
  assert.equal(stagePerson({ people, selfId: "me", lastSpoke }), null);
  // Someone who left is nobody's stage.
  assert.equal(stagePerson({ people, selfId: "me", pinnedId: "gone", spotlightId: "c" }), "c");
  // One's own voice does not take one's own stage.
  assert.equal(stagePerson({ people, selfId: "me", lastSpoke: spoke("b", "me"), followSpeaker: true }), "b");
});

test("Auto: a pinned or spotlit person takes the stage, the others a strip within the limit", () => {
  const people = ["me", "a", "b", "c", "d"];
  const plan = planLayout({ mode: "auto", people, selfId: "me", limit: 4, spotlightId: "c" });
  assert.equal(plan.arrangement, "stage");
  assert.equal(plan.stageId, "c");
  assert.deepEqual(plan.shown, ["c", "me", "a"]);
  assert.equal(plan.others, 2);
  const pinned = planLayout({ mode: "auto", people, selfId: "me", limit: 4, spotlightId: "c", pinnedId: "d" });
  assert.equal(pinned.stageId, "d");
  // The spotlit person is kept in the strip of one who pinned someone else.
  assert.ok(pinned.shown.includes("c"));
});

test("Auto with two people is the 1:1 picture-in-picture; Tiled keeps it a grid", () => {
  assert.equal(planLayout({ mode: "auto", people: ["me", "a"], selfId: "me", limit: 9 }).arrangement, "one-to-one");
  assert.equal(planLayout({ mode: "tiled", people: ["me", "a"], selfId: "me", limit: 9 }).arrangement, "grid");
});

test("Tiled keeps a spotlit person in the grid, first, rather than on a stage", () => {
  const plan = planLayout({ mode: "tiled", people: ["me", "a", "b", "c", "d"], selfId: "me", limit: 3, spotlightId: "d" });
  assert.equal(plan.arrangement, "grid");
  assert.deepEqual(plan.shown, ["d", "me"]);
  assert.equal(plan.others, 3);
});

test("Spotlight: the speaker alone; Sidebar: the speaker on the stage and a strip", () => {
  const people = ["me", "a", "b", "c"];
  const spotlight = planLayout({ mode: "spotlight", people, selfId: "me", limit: 9, lastSpoke: spoke("b") });
  assert.equal(spotlight.arrangement, "stage");
  assert.deepEqual(spotlight.shown, ["b"]);
  assert.equal(spotlight.others, 0);
  const sidebar = planLayout({ mode: "sidebar", people, selfId: "me", limit: 3, lastSpoke: spoke("b") });
  assert.equal(sidebar.stageId, "b");
  assert.deepEqual(sidebar.shown, ["b", "me"]);
  assert.equal(sidebar.others, 2);
});

test("a presentation takes the stage: a strip within the limit, nothing beside it in Spotlight", () => {
  const people = ["me", "a", "b", "c"];
  const auto = planLayout({ mode: "auto", people, selfId: "me", limit: 3, presenting: true });
  assert.equal(auto.arrangement, "presenting");
  assert.deepEqual(auto.shown, ["me", "a"]);
  assert.equal(auto.others, 2);
  const alone = planLayout({ mode: "spotlight", people, selfId: "me", limit: 3, presenting: true });
  assert.deepEqual(alone.shown, []);
  assert.equal(alone.others, 0);
});
