// Layouts as Meet's ("Change layout", issue 14.1): which people get a tile and how the stage is
// arranged. Pure decisions only (no DOM): tiles.js applies them, tests/js/call-layout.test.mjs
// checks them under node.
//
// Modes:
//   auto      - a grid of at most `limit` tiles; the stage for a pinned or spotlit person (and
//               for a presentation), the 1:1 picture-in-picture for two people;
//   tiled     - a grid of at most `limit` tiles, always (a pinned or spotlit person is kept in it,
//               first); a presentation still takes the stage;
//   spotlight - one person alone: pinned > spotlit by the host > the latest other speaker > the
//               first other person > oneself (a presentation alone when there is one);
//   sidebar   - that same person on the stage and a strip of others beside it.
//
// Over the limit: the last tile is "N others" (it opens People) instead of paging: everyone is one
// click away, and nothing moves under the person's pointer when a page turns. Tiles that are not
// shown are hidden, so the ViewReporter tells the SFU 0x0 for them and it sends nothing.
// Who is shown stays put between decisions (`previous`): a new speaker who has no tile takes the
// place of the shown person who spoke least recently, as Meet swaps them in.

export const LAYOUT_MODES = ["auto", "tiled", "spotlight", "sidebar"];
export const DEFAULT_MODE = "auto";
// The slider's range (Meet's), and its cap on a phone's narrow screen.
export const MIN_TILES = 6;
export const MAX_TILES = 49;
export const DEFAULT_TILES = 16;
export const PHONE_MAX_TILES = 9;
export const PHONE_MAX_WIDTH = 600;
// The lowest limit honoured from storage: below the slider's 6, for small test calls that need
// an overflow with three or four people. Two is oneself and the "N others" tile.
export const LOWEST_TILE_LIMIT = 2;
export const LAYOUT_STORAGE_KEY = "meet.layout";

// The limit that applies in a window this wide: the chosen one (or the default), kept in range,
// at most PHONE_MAX_TILES below PHONE_MAX_WIDTH.
export function effectiveTileLimit(chosen, viewportWidth) {
  const number = Number(chosen);
  let limit = Number.isFinite(number) && number > 0 ? Math.round(number) : DEFAULT_TILES;
  limit = Math.min(MAX_TILES, Math.max(LOWEST_TILE_LIMIT, limit));
  if (viewportWidth > 0 && viewportWidth < PHONE_MAX_WIDTH) limit = Math.min(limit, PHONE_MAX_TILES);
  return limit;
}

// {mode, tiles} from what a browser kept (a JSON string or null); anything unreadable: defaults.
export function parseLayoutChoice(text) {
  let stored = {};
  try {
    stored = JSON.parse(text || "{}") || {};
  } catch {
    stored = {};
  }
  const mode = LAYOUT_MODES.includes(stored.mode) ? stored.mode : DEFAULT_MODE;
  const tiles = Number(stored.tiles);
  return {
    mode,
    tiles: Number.isFinite(tiles) && tiles > 0
      ? Math.min(MAX_TILES, Math.max(LOWEST_TILE_LIMIT, Math.round(tiles)))
      : DEFAULT_TILES,
  };
}

// The most recent speaker other than oneself (lastSpoke: peerId -> a counter, higher = later).
function latestOtherSpeaker(people, selfId, lastSpoke) {
  let best = null;
  let bestAt = -Infinity;
  for (const id of people) {
    const at = lastSpoke.get(id);
    if (id !== selfId && at !== undefined && at > bestAt) {
      best = id;
      bestAt = at;
    }
  }
  return best;
}

// Who takes the stage: one's own pin wins, then the host's spotlight; with `followSpeaker` (the
// Spotlight and Sidebar layouts) the latest other speaker, else the first other person, else
// oneself. null when nobody asks for it (and not following the speaker).
export function stagePerson({ people, selfId, pinnedId = null, spotlightId = null, lastSpoke = new Map(), followSpeaker = false }) {
  if (pinnedId !== null && people.includes(pinnedId)) return pinnedId;
  if (spotlightId !== null && people.includes(spotlightId)) return spotlightId;
  if (!followSpeaker) return null;
  return latestOtherSpeaker(people, selfId, lastSpoke)
    || people.find((id) => id !== selfId)
    || (people.includes(selfId) ? selfId : null);
}

// Which of `pool` (people in join order) get one of `slots` tiles: all of them when they fit,
// else slots - 1 of them and an "N others" tile. `previous` keeps places stable; `required`
// (oneself, the active speaker, a pinned or spotlit person), in priority order, are always in,
// each replacing the shown person who spoke least recently (never: oldest; a tie: the one who
// joined last). Returns {shown: ids in tile order, hidden: ids without a tile, in join order}.
export function chooseShown({ pool, slots, previous = [], required = [], lastSpoke = new Map() }) {
  if (pool.length <= slots) return { shown: [...pool], hidden: [] };
  const capacity = Math.max(0, slots - 1);
  const present = new Set(pool);
  const joinIndex = new Map(pool.map((id, index) => [id, index]));
  const spokeAt = (id) => (lastSpoke.has(id) ? lastSpoke.get(id) : -Infinity);
  const mustShow = required.filter((id, index) => present.has(id) && required.indexOf(id) === index);
  const kept = new Set(mustShow);
  const shown = previous.filter((id, index) => present.has(id) && previous.indexOf(id) === index);
  // The one to give up a place: not required, spoke least recently, joined last.
  const victimIndex = () => {
    let found = -1;
    shown.forEach((id, index) => {
      if (kept.has(id)) return;
      if (found < 0) {
        found = index;
        return;
      }
      const other = shown[found];
      const older = spokeAt(id) < spokeAt(other)
        || (spokeAt(id) === spokeAt(other) && joinIndex.get(id) > joinIndex.get(other));
      if (older) found = index;
    });
    return found;
  };
  while (shown.length > capacity) {
    const index = victimIndex();
    if (index < 0) break;
    shown.splice(index, 1);
  }
  for (const id of mustShow) {
    if (shown.includes(id)) continue;
    if (shown.length < capacity) {
      shown.push(id);
      continue;
    }
    const index = victimIndex();
    if (index >= 0) shown[index] = id; // in the same place, as Meet swaps a speaker in
  }
  // Free places: the most recent speakers first, then in join order.
  const rest = pool
    .filter((id) => !shown.includes(id))
    .sort((a, b) => spokeAt(b) - spokeAt(a) || joinIndex.get(a) - joinIndex.get(b));
  for (const id of rest) {
    if (shown.length >= capacity) break;
    shown.push(id);
  }
  const shownSet = new Set(shown);
  return { shown, hidden: pool.filter((id) => !shownSet.has(id)) };
}

// The whole decision for one moment. people: everyone with a tile, in join order (oneself
// included); presenting: a screen share (or our own notice) has the stage. Returns
// {arrangement: "grid" | "one-to-one" | "stage" | "presenting", stageId, shown, hidden, others}
// where `shown` is the tiles in order (the stage's person first for "stage"), `hidden` those
// without a tile, `others` the "N others" count (0: no such tile).
export function planLayout({
  mode = DEFAULT_MODE, people, selfId, limit, pinnedId = null, spotlightId = null,
  activeSpeakerId = null, lastSpoke = new Map(), presenting = false, previous = [],
}) {
  const layoutMode = LAYOUT_MODES.includes(mode) ? mode : DEFAULT_MODE;
  const slots = Math.max(LOWEST_TILE_LIMIT, limit || DEFAULT_TILES);
  const followSpeaker = layoutMode === "spotlight" || layoutMode === "sidebar";
  const stageId = stagePerson({ people, selfId, pinnedId, spotlightId, lastSpoke, followSpeaker });
  const speaker = activeSpeakerId !== null && people.includes(activeSpeakerId) ? activeSpeakerId : null;
  const required = [selfId, pinnedId, spotlightId, speaker].filter((id) => id !== null);
  // `alone`: Spotlight shows one thing and no "N others" tile beside it.
  const result = (arrangement, stage, chosen, { alone = false } = {}) => ({
    arrangement,
    stageId: stage,
    shown: stage === null ? chosen.shown : [stage, ...chosen.shown],
    hidden: chosen.hidden,
    others: alone ? 0 : chosen.hidden.length,
  });

  if (presenting) {
    // The presentation has the stage; Spotlight shows it alone, the others a strip beside it.
    if (layoutMode === "spotlight") {
      return result("presenting", null, { shown: [], hidden: [...people] }, { alone: true });
    }
    return result("presenting", null, chooseShown({ pool: people, slots, previous, required, lastSpoke }));
  }
  if (layoutMode === "spotlight") {
    const hidden = people.filter((id) => id !== stageId);
    return result("stage", stageId, { shown: [], hidden }, { alone: true });
  }
  const onStage = layoutMode === "sidebar" || (layoutMode === "auto" && stageId !== null);
  if (onStage && stageId !== null) {
    const pool = people.filter((id) => id !== stageId);
    const strip = chooseShown({
      pool,
      slots: slots - 1,
      previous: previous.filter((id) => id !== stageId),
      required: required.filter((id) => id !== stageId),
      lastSpoke,
    });
    return result("stage", stageId, strip);
  }
  // A grid. Tiled keeps a pinned or spotlit person in it, first.
  const first = pinnedId !== null && people.includes(pinnedId) ? pinnedId
    : spotlightId !== null && people.includes(spotlightId) ? spotlightId : null;
  const chosen = chooseShown({ pool: people, slots, previous, required, lastSpoke });
  if (first !== null && chosen.shown.includes(first)) {
    chosen.shown = [first, ...chosen.shown.filter((id) => id !== first)];
  }
  const oneToOne = layoutMode === "auto" && people.length === 2 && people.includes(selfId) && slots >= 2;
  return result(oneToOne ? "one-to-one" : "grid", null, chosen);
}
