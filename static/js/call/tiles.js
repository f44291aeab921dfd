// The tile grid: one tile per participant (video or initial, name, muted icon, connection
// quality), a large presentation area for shared screens, and the layout that re-flows the grid
// for any number of people and any viewport. User text only ever goes in through textContent.

// Cameras deliver 4:3 or 16:9; 4:3 keeps side-by-side tiles for two people on a wide screen.
const TILE_ASPECT = 4 / 3;
const GRID_GAP_PX = 8;

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
      displayName: "",
      track: null,
    };
    this._setName(tile, name);
    return tile;
  }

  _setName(tile, name) {
    tile.displayName = name;
    tile.name.textContent = name;
    tile.initial.textContent = initialOf(name);
    tile.element.setAttribute("aria-label", name);
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
  }

  setActiveSpeaker(peerId) {
    this.activeSpeaker = peerId;
    for (const [id, tile] of this.tiles) {
      tile.element.classList.toggle("tile-speaking", id === peerId);
    }
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
    const count = this.tiles.size;
    // Two people, no presentation: the other one fills the stage and we are a small picture
    // in its corner (as Meet's 1:1 call); otherwise everyone in the grid.
    const presenting = this.screens.size > 0 || Boolean(this.presentingNotice);
    // Pinned (pin.js): that tile takes the stage, the others a strip (--strip of them), as long
    // as no presentation has the stage.
    const pinned = !presenting && this.tiles.has(this.pinnedPeerId) ? this.pinnedPeerId : null;
    this.grid.classList.toggle("tile-grid-pinned", pinned !== null);
    for (const [id, tile] of this.tiles) tile.element.classList.toggle("tile-pinned", id === pinned);
    this.grid.style.setProperty("--strip", String(Math.max(1, count - 1)));
    const oneToOne = count === 2 && !presenting && pinned === null
      && [...this.tiles.values()].some((tile) => tile.isLocal);
    this.grid.classList.toggle("tile-grid-one-to-one", oneToOne);
    const inGrid = oneToOne ? 1 : count;
    const { width, height } = this.grid.getBoundingClientRect();
    const cols = bestColumns(inGrid, width, height);
    const rows = Math.max(1, Math.ceil(inGrid / cols));
    this.grid.style.setProperty("--cols", String(cols));
    this.grid.style.setProperty("--rows", String(rows));
    this.grid.dataset.count = String(count);
    // A last row that is not full is centred (the grid counts half columns: each tile spans
    // two, and the last row's first tile starts half a tile in per missing tile).
    const ordered = [...this.grid.children].filter((element) => element.classList.contains("tile"));
    const remainder = inGrid % cols;
    const lastRowStart = remainder === 0 || oneToOne || presenting || pinned !== null ? -1 : inGrid - remainder;
    ordered.forEach((element, index) => {
      element.style.gridColumnStart = index === lastRowStart ? String(cols - remainder + 1) : "";
    });
  }

  clear() {
    for (const peerId of [...this.tiles.keys()]) this.removePeer(peerId);
    for (const consumerId of [...this.audio.keys()]) this.removeAudio(consumerId);
  }
}
