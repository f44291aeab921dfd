// Reactions (docs/protocol.md, "Raised hands and reactions"): "Send a reaction" opens a bar of
// Meet's emoji; a reaction shows on the sender's tile and floats up briefly over everyone's
// call (no movement for people who ask their system to reduce motion: it just shows, then
// goes). The server decides everything else: which emoji exist (the join response), how many a
// person may send (too_many_reactions), and whether the host turned them off (reactionsEnabled).

// How long a reaction stays on the tile and on screen (the floating animation's length too).
export const REACTION_SHOW_MS = 3000;
// More at once than this on screen and the oldest goes first.
const MAX_FLOATING = 12;

export class ReactionsUi {
  // request(method, data) -> Promise; selfId() -> our peer id; nameOf(peerId) -> shown name;
  // toast(text): a visible notice.
  constructor({ button, picker, layer, grid, hostSwitch, request, selfId, nameOf, toast }) {
    this.button = button;
    this.picker = picker;
    this.layer = layer;
    this.grid = grid;
    this.hostSwitch = hostSwitch;
    this.request = request;
    this.selfId = selfId;
    this.nameOf = nameOf;
    this.toast = toast || (() => {});
    this.names = new Map(); // emoji -> its name, as the server listed them
    this.enabled = true;
    this.active = false;
    this.tileTimers = new Map(); // peerId -> timer taking the tile's reaction down
    this.button.addEventListener("click", () => this.setPickerOpen(this.picker.hidden));
    this.picker.addEventListener("click", (event) => {
      const choice = event.target.closest("[data-emoji]");
      if (choice) this.send(choice.dataset.emoji);
    });
    this.picker.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.setPickerOpen(false);
        this.button.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (this.picker.hidden) return;
      if (this.picker.contains(event.target) || this.button.contains(event.target)) return;
      this.setPickerOpen(false);
    });
    if (this.hostSwitch) {
      this.hostSwitch.addEventListener("change", () => this._setEnabledForAll(this.hostSwitch.checked));
    }
  }

  applyJoin(data) {
    const reactions = data.reactions || {};
    this.active = true;
    const emoji = Array.isArray(reactions.emoji) ? reactions.emoji : [];
    this.names = new Map(emoji.filter((e) => e && typeof e.emoji === "string").map((e) => [e.emoji, e.name || e.emoji]));
    this._buildPicker();
    this.setModerator(data.canModerate === true);
    this.setEnabled(reactions.enabled !== false);
  }

  setModerator(moderator) {
    if (this.hostSwitch) this.hostSwitch.closest(".switch").hidden = !moderator;
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    this.button.disabled = !enabled;
    this.button.title = enabled ? "Send a reaction" : "The host turned reactions off";
    if (!enabled) this.setPickerOpen(false);
    if (this.hostSwitch) this.hostSwitch.checked = enabled;
  }

  setPickerOpen(open) {
    const show = Boolean(open) && this.enabled && this.active;
    this.picker.hidden = !show;
    this.button.setAttribute("aria-expanded", String(show));
    this.button.classList.toggle("is-active", show);
    if (show) {
      const first = this.picker.querySelector("button");
      if (first) first.focus();
    }
  }

  onNotification(method, data) {
    if (method === "reaction") {
      this.show(data.peerId, data.emoji);
    } else if (method === "reactionsEnabled") {
      const enabled = data.enabled !== false;
      if (enabled !== this.enabled) {
        this.setEnabled(enabled);
        this.toast(enabled ? "The host turned reactions on" : "The host turned reactions off");
      }
    } else if (method === "peerClosed") {
      this._clearTile(data.peerId);
    }
  }

  async send(emoji) {
    if (!this.active || !this.enabled || !this.names.has(emoji)) return;
    try {
      await this.request("sendReaction", { emoji });
    } catch (error) {
      if (error.code === "reactions_off") this.setEnabled(false);
      this.toast(error.code === "too_many_reactions"
        ? "You're sending reactions too fast. Wait a few seconds."
        : error.message || "The reaction could not be sent.");
    }
  }

  async _setEnabledForAll(enabled) {
    try {
      const result = await this.request("setReactionsEnabled", { enabled });
      this.setEnabled(result.enabled !== false);
    } catch (error) {
      this.setEnabled(this.enabled); // the switch goes back to what is true
      this.toast(error.message || "That did not work.");
    }
  }

  // --- what is shown ---------------------------------------------------------------------------
  show(peerId, emoji) {
    if (!this.names.has(emoji) || typeof peerId !== "string") return;
    const who = peerId === this.selfId() ? "You" : this.nameOf(peerId);
    this._showOnTile(peerId, emoji);
    const float = document.createElement("div");
    float.className = "reaction-float";
    float.setAttribute("role", "img");
    float.setAttribute("aria-label", `${who}: ${this.names.get(emoji)}`);
    const symbol = document.createElement("span");
    symbol.className = "reaction-float-emoji";
    symbol.textContent = emoji;
    const name = document.createElement("span");
    name.className = "reaction-float-name";
    name.textContent = who;
    float.append(symbol, name);
    // Each starts a little to the side of the last, so a burst does not pile up in one place.
    float.style.setProperty("--reaction-offset", `${(this.layer.childElementCount % 4) * 18}px`);
    this.layer.append(float);
    while (this.layer.childElementCount > MAX_FLOATING) this.layer.firstElementChild.remove();
    setTimeout(() => float.remove(), REACTION_SHOW_MS);
  }

  _showOnTile(peerId, emoji) {
    const tile = [...this.grid.querySelectorAll(".tile[data-peer-id]")].find((t) => t.dataset.peerId === peerId);
    if (!tile) return;
    let badge = tile.querySelector(".tile-reaction");
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "tile-reaction";
      badge.setAttribute("role", "img");
      tile.append(badge);
    }
    badge.textContent = emoji;
    badge.setAttribute("aria-label", `Reacted ${this.names.get(emoji)}`);
    clearTimeout(this.tileTimers.get(peerId));
    this.tileTimers.set(peerId, setTimeout(() => this._clearTile(peerId), REACTION_SHOW_MS));
  }

  _clearTile(peerId) {
    clearTimeout(this.tileTimers.get(peerId));
    this.tileTimers.delete(peerId);
    for (const tile of this.grid.querySelectorAll(".tile[data-peer-id]")) {
      if (tile.dataset.peerId !== peerId) continue;
      const badge = tile.querySelector(".tile-reaction");
      if (badge) badge.remove();
    }
  }

  _buildPicker() {
    const buttons = [...this.names].map(([emoji, name]) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "reaction-choice";
      button.dataset.emoji = emoji;
      button.setAttribute("aria-label", name);
      button.title = name;
      button.textContent = emoji;
      return button;
    });
    this.picker.replaceChildren(...buttons);
  }

  clear() {
    this.active = false;
    this.setPickerOpen(false);
    for (const peerId of [...this.tileTimers.keys()]) this._clearTile(peerId);
    this.layer.replaceChildren();
  }
}
