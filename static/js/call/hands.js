// Raised hands (docs/protocol.md, "Raised hands and reactions"): the "Raise hand" button and
// Meet's shortcut Ctrl+Alt+H, the queue on the tiles (a hand and its position) and at the top
// of People, lowering one's own hand, a host or co-host lowering anyone's or all, the hand that
// lowers itself once its owner has been the active speaker for a while, and what screen readers
// are told ("Alice raised a hand").
//
// The queue is the server's: the join response and every `handsChanged` carry it whole, with a
// revision; the highest revision wins (two changes may arrive in either order). Names go in
// through textContent only.

const HAND_ICON_PATH = "M23 5.5V20c0 2.2-1.8 4-4 4h-7.3c-1.08 0-2.1-.43-2.85-1.19L1 14.83s1.26-1.23 1.3-1.25c.22-.19.49-.29.79-.29.22 0 .42.06.6.16.04.01 4.31 2.46 4.31 2.46V4c0-.83.67-1.5 1.5-1.5S11 3.17 11 4v7h1V1.5c0-.83.67-1.5 1.5-1.5S15 .67 15 1.5V11h1V2.5c0-.83.67-1.5 1.5-1.5s1.5.67 1.5 1.5V11h1V5.5c0-.83.67-1.5 1.5-1.5s1.5.67 1.5 1.5z";
const SVG_NS = "http://www.w3.org/2000/svg";
// Used until the join response says (hands.lowerAfterSpeakingSeconds).
const DEFAULT_LOWER_AFTER_SPEAKING_SECONDS = 3;

export function handIcon() {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", HAND_ICON_PATH);
  svg.append(path);
  return svg;
}

// The queue as the server last said it: peer ids, first raised first.
export class HandQueue {
  constructor() {
    this.peerIds = [];
    this.revision = -Infinity;
  }

  // state: {queue: [{peerId, raisedAt}], revision}. False when it is older than what we have.
  apply(state) {
    if (!state || !Array.isArray(state.queue)) return false;
    const revision = Number(state.revision) || 0;
    if (revision < this.revision) return false;
    this.revision = revision;
    this.peerIds = state.queue
      .map((hand) => hand && hand.peerId)
      .filter((peerId) => typeof peerId === "string" && peerId);
    return true;
  }

  // A join's state replaces whatever we had (a reconnect may come back to an older revision
  // only if the server's counter was lost, and then its word is still the truth).
  reset(state) {
    this.peerIds = [];
    this.revision = -Infinity;
    return this.apply(state);
  }

  // 1 for the first hand raised, 0 when this peer's hand is down.
  position(peerId) {
    return this.peerIds.indexOf(peerId) + 1;
  }

  has(peerId) {
    return this.peerIds.includes(peerId);
  }

  // The peer left (peerClosed): their hand goes, the others move up.
  remove(peerId) {
    const before = this.peerIds.length;
    this.peerIds = this.peerIds.filter((id) => id !== peerId);
    return this.peerIds.length !== before;
  }

  clear() {
    this.peerIds = [];
    this.revision = -Infinity;
  }
}

// The hand that lowers itself: `onLower` runs once our hand has been up while we were the
// active speaker (as the SFU announced it) for `seconds` in all. Speech has pauses, and the SFU
// says "nobody" (null) for each one longer than its 300 ms window, so the time adds up across
// them; it starts again from 0 when the hand goes down.
export class AutoLower {
  constructor({ seconds = DEFAULT_LOWER_AFTER_SPEAKING_SECONDS, onLower, timers = globalThis, now = () => performance.now() }) {
    this.seconds = seconds;
    this.onLower = onLower;
    this.timers = timers;
    this.now = now;
    this.timer = null;
    this.spokenMs = 0; // with the hand up, before the current stretch
    this.speakingSince = null;
  }

  update({ speaking, raised }) {
    if (!raised) {
      this.stop();
      return;
    }
    if (speaking && this.speakingSince === null) {
      this.speakingSince = this.now();
      const left = Math.max(0, this.seconds * 1000 - this.spokenMs);
      this.timer = this.timers.setTimeout(() => {
        this.stop();
        this.onLower();
      }, left);
    } else if (!speaking && this.speakingSince !== null) {
      this.spokenMs += this.now() - this.speakingSince;
      this.speakingSince = null;
      this._clearTimer();
    }
  }

  // The hand is down (or the call is over): the count starts again.
  stop() {
    this._clearTimer();
    this.spokenMs = 0;
    this.speakingSince = null;
  }

  _clearTimer() {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}

function ordinalLabel(position) {
  return `Hand raised, number ${position} in line`;
}

export class HandsUi {
  // request(method, data) -> Promise; selfId() -> our peer id; nameOf(peerId) -> shown name;
  // toast(text): a visible notice (announced as well: the toast is a status region).
  constructor({ root, button, section, list, lowerAllButton, grid, announcer, request, selfId, nameOf, toast }) {
    this.root = root;
    this.button = button;
    this.section = section;
    this.list = list;
    this.lowerAllButton = lowerAllButton;
    this.grid = grid;
    this.announcer = announcer;
    this.request = request;
    this.selfId = selfId;
    this.nameOf = nameOf;
    this.toast = toast || (() => {});
    this.queue = new HandQueue();
    this.moderator = false;
    this.active = false; // in the call: the button and the shortcut work
    this.speaking = false;
    this.busy = false;
    this.autoLowering = false;
    this.autoLower = new AutoLower({ onLower: () => this._lowerBecauseSpoke() });
    this.button.addEventListener("click", () => this.toggle());
    this.lowerAllButton.addEventListener("click", () => this._send("lowerAllHands", {}));
    document.addEventListener("keydown", (event) => {
      // Meet's Ctrl+Alt+H (Ctrl+Cmd+H on a Mac); by the key's place, as Alt changes its letter.
      if (!this.active || !(event.ctrlKey || event.metaKey) || !event.altKey || event.shiftKey) return;
      if (event.code !== "KeyH") return;
      event.preventDefault();
      this.toggle();
    });
    // A tile made after the queue arrived (a newcomer, our own tile at join) gets its hand.
    new MutationObserver(() => this._renderTiles()).observe(grid, { childList: true });
    this.render();
  }

  applyJoin(data) {
    this.active = true;
    this.moderator = data.canModerate === true;
    const hands = data.hands || {};
    if (Number(hands.lowerAfterSpeakingSeconds) > 0) this.autoLower.seconds = Number(hands.lowerAfterSpeakingSeconds);
    this.queue.reset(hands);
    this.render();
  }

  onNotification(method, data) {
    switch (method) {
      case "handsChanged":
        if (this.queue.apply(data)) {
          this.render();
          this._announce(data);
        }
        break;
      case "peerClosed":
        if (this.queue.remove(data.peerId)) this.render();
        break;
      case "newPeer":
      case "peerDisplayNameChanged":
        // The call has its own handler for these: render once it has named the peer.
        queueMicrotask(() => this.render());
        break;
      case "activeSpeaker":
        this.speaking = Boolean(data.peerId) && data.peerId === this.selfId();
        this._updateAutoLower();
        break;
      default:
        break;
    }
  }

  get raised() {
    return this.queue.has(this.selfId());
  }

  async toggle() {
    if (!this.active) return;
    await this._send(this.raised ? "lowerHand" : "raiseHand", {});
  }

  async _lowerBecauseSpoke() {
    if (!this.active || !this.raised) return;
    this.autoLowering = true;
    await this._send("lowerHand", {});
  }

  async _send(method, data) {
    if (this.busy) return;
    this.busy = true;
    try {
      const state = await this.request(method, data);
      if (this.queue.apply(state)) this.render();
    } catch (error) {
      this.autoLowering = false;
      this.toast(error.message || "That did not work.");
    } finally {
      this.busy = false;
    }
  }

  clear() {
    this.active = false;
    this.speaking = false;
    this.autoLowering = false;
    this.autoLower.stop();
    this.queue.clear();
    this.render();
  }

  // --- what is shown ---------------------------------------------------------------------------
  render() {
    const raised = this.raised;
    this.button.setAttribute("aria-label", raised ? "Lower hand" : "Raise hand");
    this.button.setAttribute("aria-pressed", String(raised));
    this.button.title = raised ? "Lower hand (Ctrl+Alt+H)" : "Raise hand (Ctrl+Alt+H)";
    this.button.classList.toggle("is-active", raised);
    this._renderTiles();
    this._renderList();
    this._updateAutoLower();
  }

  _renderTiles() {
    for (const tile of this.grid.querySelectorAll(".tile[data-peer-id]")) {
      const position = this.queue.position(tile.dataset.peerId);
      let badge = tile.querySelector(".tile-hand");
      if (!position) {
        if (badge) badge.remove();
        continue;
      }
      if (!badge) {
        badge = document.createElement("span");
        badge.className = "tile-hand";
        badge.setAttribute("role", "img");
        const number = document.createElement("span");
        number.className = "tile-hand-position";
        badge.append(handIcon(), number);
        tile.append(badge);
      }
      badge.setAttribute("aria-label", ordinalLabel(position));
      badge.querySelector(".tile-hand-position").textContent = String(position);
    }
  }

  _renderList() {
    const self = this.selfId();
    const items = this.queue.peerIds.map((peerId, index) => {
      const item = document.createElement("li");
      item.className = "person hand-person";
      item.dataset.peerId = peerId;
      const position = document.createElement("span");
      position.className = "hand-position";
      position.append(handIcon());
      const number = document.createElement("span");
      number.textContent = String(index + 1);
      position.append(number);
      const name = document.createElement("span");
      name.className = "person-name";
      const shown = peerId === self ? `${this.nameOf(peerId)} (You)` : this.nameOf(peerId);
      name.textContent = shown;
      item.append(position, name);
      if (peerId === self || this.moderator) {
        const lower = document.createElement("button");
        lower.type = "button";
        lower.className = "link-button hand-lower";
        lower.textContent = "Lower hand";
        // Named by what it shows first (WCAG 2.5.3), then whose hand.
        lower.setAttribute("aria-label", `Lower hand for ${shown}`);
        lower.addEventListener("click", () => this._send("lowerHand", { peerId }));
        item.append(lower);
      }
      return item;
    });
    this.list.replaceChildren(...items);
    this.section.hidden = items.length === 0;
    this.lowerAllButton.hidden = !this.moderator || items.length < 2;
  }

  _updateAutoLower() {
    this.autoLower.update({ speaking: this.active && this.speaking, raised: this.raised });
  }

  // --- what screen readers are told ------------------------------------------------------------
  _announce(change) {
    const self = this.selfId();
    const by = typeof change.by === "string" ? change.by : null;
    const name = (peerId) => this.nameOf(peerId);
    for (const peerId of change.raised || []) {
      this._say(peerId === self ? "You raised your hand" : `${name(peerId)} raised a hand`);
    }
    const lowered = change.lowered || [];
    if (!lowered.length) return;
    if (by && !(lowered.length === 1 && lowered[0] === by)) {
      // A host or co-host lowered someone else's hand, or all of them. Someone whose own hand
      // it was sees it too (a toast, which is announced as well).
      const who = by === self ? "You" : name(by);
      const whose = lowered[0] === self ? "your" : `${name(lowered[0])}'s`;
      const text = lowered.length > 1 ? `${who} lowered all hands` : `${who} lowered ${whose} hand`;
      if (lowered.includes(self) && by !== self) this.toast(text);
      else this._say(text);
      return;
    }
    for (const peerId of lowered) {
      if (peerId !== self) {
        this._say(`${name(peerId)} lowered their hand`);
      } else if (this.autoLowering) {
        this.autoLowering = false;
        this.toast("Your hand was lowered because you were speaking");
      } else {
        this._say("You lowered your hand");
      }
    }
  }

  _say(text) {
    if (!this.announcer) return;
    // The same words twice in a row are announced twice: a live region speaks changes only.
    this.announcer.textContent = this.announcer.textContent === text ? `${text}\u00a0` : text;
  }
}
