// The tile grid: one tile per participant (video or initial, name, muted icon, connection
// quality), a large presentation area for shared screens, and the layout that re-flows the grid
// for any number of people and any viewport. User text only ever goes in through textContent.
// Who gets a tile and how the stage is arranged (Auto, Tiled, Spotlight, Sidebar; the tile limit
// and its "N others" tile) is decided by layout.js's planLayout(); layout() here applies it.

import { DEFAULT_MODE, DEFAULT_TILES, effectiveTileLimit, planLayout } from "./layout.js";

// Every tile is a 16:9 box whatever the stage's shape, as in Meet: the grid picks the largest
// 16:9 tile that fits all of them and centres the block, leaving the rest of the stage empty.
export const TILE_ASPECT = 16 / 9;
const GRID_GAP_PX = 8;
// A picture fills its box (object-fit: cover) only while that crops at most this share of it:
// a 4:3 webcam in a 16:9 box loses a quarter of its height (foreheads and shoulders) and still
// fills the box; a portrait phone camera (it would lose 68 %) is shown whole, letterboxed.
// Screen shares are always shown whole: a cropped slide or line of code is useless.
export const MAX_COVER_CROP = 0.26;

function initialOf(name) {
  const trimmed = (name || "").trim();
  return trimmed ? Array.from(trimmed)[0].toUpperCase() : "?";
}

// The column count that makes tiles of a fixed aspect ratio as large as possible in a box.
export function bestColumns(count, width, height, aspect = TILE_ASPECT, gap = GRID_GAP_PX) {
  if (count <= 1 || width <= 0 || height <= 0) return 1;
  let best = 1;
  let bestWidth = 0;
  for (let cols = 1; cols <= count; cols += 1) {
    const rows = Math.ceil(count / cols);
    const cellWidth = (width - gap * (cols - 1)) / cols;
    const cellHeight = (height - gap * (rows - 1)) / rows;
    const tileWidth = Math.min(cellWidth, cellHeight * aspect);
    if (tileWidth > bestWidth + 0.5) {
      bestWidth = tileWidth;
      best = cols;
    }
  }
  return best;
}

// The largest tiles of a fixed aspect ratio that `count` of them fit in a width x height box:
// {cols, rows, width, height} in whole pixels (rounded down, so the block never overflows).
export function tileSize(count, width, height, aspect = TILE_ASPECT, gap = GRID_GAP_PX) {
  const cols = bestColumns(count, width, height, aspect, gap);
  const rows = Math.max(1, Math.ceil(Math.max(count, 1) / cols));
  const cellWidth = Math.max(0, (width - gap * (cols - 1)) / cols);
  const cellHeight = Math.max(0, (height - gap * (rows - 1)) / rows);
  const tileWidth = Math.floor(Math.min(cellWidth, cellHeight * aspect));
  return { cols, rows, width: tileWidth, height: Math.floor(tileWidth / aspect) };
}

// How a picture of videoWidth x videoHeight goes in a box of boxAspect (width / height):
// "cover" (fills it, cropping the overflow) when that crops little, else "contain" (whole,
// letterboxed). Unknown sizes (no frame yet) fill the box, as most cameras are close to 16:9.
export function fitFor(videoWidth, videoHeight, boxAspect = TILE_ASPECT, { screen = false } = {}) {
  if (screen) return "contain";
  if (!videoWidth || !videoHeight || !boxAspect) return "cover";
  const videoAspect = videoWidth / videoHeight;
  const cropped = 1 - Math.min(videoAspect, boxAspect) / Math.max(videoAspect, boxAspect);
  return cropped <= MAX_COVER_CROP ? "cover" : "contain";
}

export class TileGrid {
  constructor({ grid, presentation, template, audioSink }) {
    this.grid = grid;
    this.presentation = presentation;
    this.template = template;
    this.audioSink = audioSink;
    this.tiles = new Map(); // peerId -> tile
    this.screens = new Map(); // peerId -> screen tile
    this.presentingNotice = null; // our own share's notice (setPresentingNotice)
    this.audio = new Map(); // consumerId -> <audio>
    this.speakerDeviceId = "";
    this.activeSpeaker = null;
    this.pinnedPeerId = null; // set by pin.js: this person takes the stage (layout())
    this.spotlightPeerId = null; // the host's spotlight for everyone (a pin wins over it)
    this.mode = DEFAULT_MODE; // "Change layout": auto | tiled | spotlight | sidebar
    this.tileChoice = DEFAULT_TILES; // the "Tiles" slider (effectiveTileLimit caps it on phones)
    // When each person last spoke (a counter, higher = later): who keeps a tile over the limit.
    this.lastSpoke = new Map();
    this._speakCounter = 0;
    this.plan = null; // the last planLayout() result
    this.othersTile = null; // the "N others" tile, while some people have none
    this.onShowEveryone = () => {}; // the "N others" tile was clicked (main.js opens People)
    this._resize = new ResizeObserver(() => this.layout());
    this._resize.observe(grid);
  }

  _build(peerId, name, extraClass) {
    const element = this.template.content.firstElementChild.cloneNode(true);
    element.dataset.peerId = peerId;
    if (extraClass) element.classList.add(extraClass);
    const tile = {
      element,
      video: element.querySelector(".tile-video"),
      name: element.querySelector(".tile-name"),
      initial: element.querySelector(".tile-initial"),
      muted: element.querySelector(".tile-muted"),
      quality: element.querySelector(".tile-quality"),
      voice: element.querySelector(".tile-voice"),
      displayName: "",
      track: null,
      isScreen: extraClass === "tile-screen",
    };
    this._setName(tile, name);
    // The picture's shape is known (and may change: a phone turned, another camera picked)
    // only once frames arrive.
    tile.video.addEventListener("loadedmetadata", () => this._fit(tile));
    tile.video.addEventListener("resize", () => this._fit(tile));
    this._fit(tile);
    return tile;
  }

  _setName(tile, name) {
    tile.displayName = name;
    tile.name.textContent = name;
    tile.initial.textContent = initialOf(name);
    tile.element.setAttribute("aria-label", name);
  }

  // object-fit for this tile's picture, against the box it has now (16:9 in the grid; the
  // presentation area's shape for a screen).
  _fit(tile) {
    const box = tile.element.getBoundingClientRect();
    const boxAspect = box.width > 0 && box.height > 0 ? box.width / box.height : TILE_ASPECT;
    tile.element.dataset.fit = fitFor(tile.video.videoWidth, tile.video.videoHeight, boxAspect, {
      screen: tile.isScreen,
    });
  }

  addPeer(peerId, name, { isLocal = false } = {}) {
    let tile = this.tiles.get(peerId);
    if (tile) {
      this._setName(tile, name);
      return tile;
    }
    tile = this._build(peerId, isLocal ? `${name} (You)` : name, isLocal ? "tile-local" : "");
    tile.isLocal = isLocal;
    this._setVideo(tile, null);
    this.tiles.set(peerId, tile);
    if (isLocal) this.grid.prepend(tile.element);
    else this.grid.append(tile.element);
    this.layout();
    return tile;
  }

  hasPeer(peerId) {
    return this.tiles.has(peerId);
  }

  removePeer(peerId) {
    const tile = this.tiles.get(peerId);
    if (tile) {
      tile.video.srcObject = null;
      tile.element.remove();
      this.tiles.delete(peerId);
    }
    this.lastSpoke.delete(peerId);
    if (this.spotlightPeerId === peerId) this.spotlightPeerId = null;
    this.setScreen(peerId, null);
    this.layout();
  }

  setName(peerId, name) {
    const tile = this.tiles.get(peerId);
    if (tile) this._setName(tile, tile.isLocal ? `${name} (You)` : name);
    const screen = this.screens.get(peerId);
    if (screen) this._setName(screen, `${name} is presenting`);
  }

  _setVideo(tile, track) {
    tile.track = track;
    tile.element.classList.toggle("tile-no-video", !track);
    if (track) {
      if (!tile.video.srcObject || tile.video.srcObject.getVideoTracks()[0] !== track) {
        tile.video.srcObject = new MediaStream([track]);
      }
      tile.video.play().catch(() => {});
    } else {
      tile.video.srcObject = null;
    }
  }

  setVideo(peerId, track) {
    const tile = this.tiles.get(peerId);
    if (tile) this._setVideo(tile, track);
  }

  videoOf(peerId) {
    const tile = this.tiles.get(peerId);
    return tile ? tile.video : null;
  }

  screenVideoOf(peerId) {
    const screen = this.screens.get(peerId);
    return screen ? screen.video : null;
  }

  // The camera of this peer is paused (or off): show the initial instead of a frozen frame.
  setCameraOff(peerId, off) {
    const tile = this.tiles.get(peerId);
    if (tile) tile.element.classList.toggle("tile-camera-off", off);
  }

  setMicMuted(peerId, muted) {
    const tile = this.tiles.get(peerId);
    if (!tile) return;
    tile.muted.hidden = !muted;
    tile.element.classList.toggle("tile-mic-muted", muted);
    this._renderSpeaking(tile, this.activeSpeaker === peerId);
  }

  setActiveSpeaker(peerId) {
    this.activeSpeaker = peerId;
    for (const [id, tile] of this.tiles) this._renderSpeaking(tile, id === peerId);
    if (peerId === null || !this.tiles.has(peerId)) return;
    this._speakCounter += 1;
    this.lastSpoke.set(peerId, this._speakCounter);
    // A speaker without a tile is swapped in; Spotlight and Sidebar follow the speaker.
    const shown = this.plan ? this.plan.shown : [];
    if (!shown.includes(peerId) || this.mode === "spotlight" || this.mode === "sidebar") this.layout();
  }

  // "Change layout": the mode and the chosen tile limit (both kept by main.js).
  setLayout({ mode = this.mode, tiles = this.tileChoice } = {}) {
    this.mode = mode;
    this.tileChoice = tiles;
    this.layout();
  }

  // The host's spotlight for everyone (null: none).
  setSpotlight(peerId) {
    this.spotlightPeerId = peerId;
    this.layout();
  }

  // The tile limit that applies in this window now.
  tileLimit() {
    return effectiveTileLimit(this.tileChoice, window.innerWidth);
  }

  // The ring over the picture and the moving bars on the mic badge. A muted microphone shows
  // its badge instead of bars (the SFU does not name a paused microphone, but a mute may land
  // before the next activeSpeaker).
  _renderSpeaking(tile, speaking) {
    tile.element.classList.toggle("tile-speaking", speaking);
    tile.voice.hidden = !speaking || !tile.muted.hidden;
  }

  // quality: "good" | "fair" | "poor" | "unknown"; reason: why, in words (or "").
  setQuality(peerId, quality, reason = "") {
    const tile = this.tiles.get(peerId);
    const label = reason ? `Connection: ${quality}. ${reason}` : `Connection: ${quality}`;
    if (!tile || tile.quality.getAttribute("aria-label") === label) return;
    tile.quality.dataset.quality = quality;
    tile.quality.setAttribute("aria-label", label);
    tile.quality.title = label;
  }

  // label: what the presentation is called, e.g. "Ana is presenting" / "You are presenting".
  setScreen(peerId, track, label = "") {
    let screen = this.screens.get(peerId);
    if (!track) {
      if (screen) {
        screen.video.srcObject = null;
        screen.element.remove();
        this.screens.delete(peerId);
      }
    } else {
      if (!screen) {
        screen = this._build(peerId, label, "tile-screen");
        screen.muted.remove();
        screen.quality.remove();
        screen.voice.remove();
        this.screens.set(peerId, screen);
        this.presentation.append(screen.element);
      }
      this._setVideo(screen, track);
    }
    this._updatePresentation();
  }

  // What the presenter sees of its own share: a notice with "Stop presenting", not its screen
  // (a screen showing itself, smaller and smaller, as Meet avoids too).
  setPresentingNotice(on) {
    if (on && !this.presentingNotice) {
      const element = document.createElement("div");
      element.className = "tile tile-screen presenting-notice";
      element.setAttribute("role", "group");
      element.setAttribute("aria-label", "You are presenting");
      const text = document.createElement("p");
      text.className = "presenting-notice-text";
      text.textContent = "You are presenting to everyone";
      const stop = document.createElement("button");
      stop.type = "button";
      stop.className = "button button-danger";
      stop.dataset.action = "toggle-present";
      stop.textContent = "Stop presenting";
      element.append(text, stop);
      this.presentation.append(element);
      this.presentingNotice = element;
    } else if (!on && this.presentingNotice) {
      this.presentingNotice.remove();
      this.presentingNotice = null;
    }
    this._updatePresentation();
  }

  _updatePresentation() {
    const presenting = this.screens.size > 0 || Boolean(this.presentingNotice);
    this.presentation.hidden = !presenting;
    this.grid.closest(".stage").classList.toggle("stage-presenting", presenting);
    this.layout();
  }

  addAudio(consumerId, track) {
    const element = document.createElement("audio");
    element.autoplay = true;
    element.dataset.consumerId = consumerId;
    element.srcObject = new MediaStream([track]);
    this.audioSink.append(element);
    this.audio.set(consumerId, element);
    if (this.speakerDeviceId && element.setSinkId) element.setSinkId(this.speakerDeviceId).catch(() => {});
    element.play().catch(() => {});
  }

  removeAudio(consumerId) {
    const element = this.audio.get(consumerId);
    if (!element) return;
    element.srcObject = null;
    element.remove();
    this.audio.delete(consumerId);
  }

  async setSpeaker(deviceId) {
    this.speakerDeviceId = deviceId;
    await Promise.all([...this.audio.values()].map((element) => (
      element.setSinkId ? element.setSinkId(deviceId).catch(() => {}) : null
    )));
  }

  layout() {
    const presenting = this.screens.size > 0 || Boolean(this.presentingNotice);
    const ids = [...this.tiles.keys()];
    const selfId = ids.find((id) => this.tiles.get(id).isLocal) ?? null;
    const people = selfId === null ? ids : [selfId, ...ids.filter((id) => id !== selfId)];
    const plan = planLayout({
      mode: this.mode,
      people,
      selfId,
      limit: this.tileLimit(),
      pinnedId: this.pinnedPeerId,
      spotlightId: this.spotlightPeerId,
      activeSpeakerId: this.activeSpeaker,
      lastSpoke: this.lastSpoke,
      presenting,
      previous: this.plan ? this.plan.shown : [],
    });
    this.plan = plan;
    // Tiles without a place are hidden (display: none): the ViewReporter then reports 0x0 for
    // their videos and the SFU sends nothing for them. The order is the plan's (CSS order, so
    // no <video> is moved in the document, which would pause it).
    const place = new Map(plan.shown.map((id, index) => [id, index]));
    for (const [id, tile] of this.tiles) {
      tile.element.hidden = !place.has(id);
      tile.element.style.order = place.has(id) ? String(place.get(id)) : "";
      tile.element.classList.toggle("tile-pinned", id === plan.stageId);
    }
    this._renderOthers(plan);
    const stage = plan.arrangement === "stage";
    const oneToOne = plan.arrangement === "one-to-one";
    const visible = plan.shown.length + (plan.others > 0 ? 1 : 0);
    // The stage (a pinned, spotlit or speaking person): that tile large, the others a strip
    // (--strip of them) beside it; .tile-grid-pinned / .tile-pinned in call.css.
    this.grid.classList.toggle("tile-grid-pinned", stage);
    this.grid.classList.toggle("tile-grid-empty", visible === 0);
    this.grid.style.setProperty("--strip", String(Math.max(1, visible - (stage ? 1 : 0))));
    // Two people, no presentation: the other one fills the stage and we are a small picture
    // in its corner (as Meet's 1:1 call).
    this.grid.classList.toggle("tile-grid-one-to-one", oneToOne);
    this.grid.dataset.layout = plan.arrangement;
    this.grid.dataset.mode = this.mode;
    const inGrid = oneToOne ? 1 : visible;
    const { width, height } = this.grid.getBoundingClientRect();
    const size = tileSize(inGrid, width, height);
    const { cols, rows } = size;
    this.grid.style.setProperty("--cols", String(cols));
    this.grid.style.setProperty("--rows", String(rows));
    // The grid's tracks are these exact sizes (call.css), centred in the stage: each tile is
    // two half columns and the gap between them.
    this.grid.style.setProperty("--tile-w", `${size.width}px`);
    this.grid.style.setProperty("--tile-h", `${size.height}px`);
    this.grid.dataset.count = String(visible);
    // A last row that is not full is centred (the grid counts half columns: each tile spans
    // two, and the last row's first tile starts half a tile in per missing tile).
    const ordered = plan.shown.map((id) => this.tiles.get(id).element);
    if (plan.others > 0) ordered.push(this.othersTile);
    const remainder = inGrid % cols;
    const centred = plan.arrangement === "grid" && remainder !== 0;
    const lastRowStart = centred ? inGrid - remainder : -1;
    for (const tile of this.tiles.values()) tile.element.style.gridColumnStart = "";
    ordered.forEach((element, index) => {
      element.style.gridColumnStart = index === lastRowStart ? String(cols - remainder + 1) : "";
    });
    for (const tile of this.tiles.values()) this._fit(tile);
    for (const screen of this.screens.values()) this._fit(screen);
  }

  // The last tile over the limit: "N others" with the first two of them as small avatars, as
  // Meet's; it opens People, where everyone is.
  _renderOthers(plan) {
    if (plan.others === 0) {
      if (this.othersTile) this.othersTile.remove();
      this.othersTile = null;
      return;
    }
    if (!this.othersTile) {
      const element = document.createElement("button");
      element.type = "button";
      element.className = "tile tile-others";
      element.addEventListener("click", () => this.onShowEveryone());
      const faces = document.createElement("span");
      faces.className = "tile-others-faces";
      faces.setAttribute("aria-hidden", "true");
      const label = document.createElement("span");
      label.className = "tile-others-label";
      element.append(faces, label);
      this.othersTile = element;
    }
    const element = this.othersTile;
    const text = plan.others === 1 ? "1 other" : `${plan.others} others`;
    element.querySelector(".tile-others-label").textContent = text;
    element.setAttribute("aria-label", `${text}: show everyone in People`);
    element.title = "Show everyone in People";
    const faces = plan.hidden.slice(0, 2).map((id) => {
      const face = document.createElement("span");
      face.className = "tile-others-face";
      face.textContent = initialOf(this.tiles.get(id).displayName);
      return face;
    });
    element.querySelector(".tile-others-faces").replaceChildren(...faces);
    element.style.order = String(plan.shown.length);
    if (element.parentNode !== this.grid) this.grid.append(element);
  }

  clear() {
    for (const peerId of [...this.tiles.keys()]) this.removePeer(peerId);
    for (const consumerId of [...this.audio.keys()]) this.removeAudio(consumerId);
    this.spotlightPeerId = null;
    this.lastSpoke.clear();
    this.plan = null;
    this.layout();
  }
}
