// The "People" panel: everyone in the call with an icon for their microphone (off, on,
// speaking; named for screen readers, not told by colour alone) and a ⋮ menu each: "Pin" /
// "Unpin" for everyone (pin.js: your own stage only), and for hosts and co-hosts "Mute" (while
// that microphone is on) and "Remove from call" (not the host; a co-host not another co-host,
// as rooms.moderation decides). The menu holds only what this person may do, built when it
// opens so that it matches the moment. Hosts and co-hosts also get "Spotlight for everyone" /
// "Remove spotlight" (the `spotlight` request: that person on everyone's stage). The lobby's admit/deny list and the host controls (lock,
// guests, reactions, end for all) are in the same panel. Names go in through textContent only.
// Actions are handed to `onAction(action, data)`.

const SVG_NS = "http://www.w3.org/2000/svg";
// Material icons: microphone, microphone off, and three bars for someone speaking.
const MIC_ICONS = {
  on: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z",
  off: "M19 11h-1.7c0 .74-.16 1.43-.43 2.05l1.23 1.23A6.9 6.9 0 0 0 19 11zm-4.02.17c0-.06.02-.11.02-.17V5a3 3 0 0 0-6 0v.18l5.98 5.99zM4.27 3 3 4.27l6.01 6.01V11a3 3 0 0 0 3 3c.23 0 .44-.03.65-.08l1.66 1.66A5.5 5.5 0 0 1 12 16.1 5.1 5.1 0 0 1 6.7 11H5a6.9 6.9 0 0 0 6 6.72V21h2v-3.28a7 7 0 0 0 2.54-.9L19.73 21 21 19.73 4.27 3z",
  speaking: "M4 9h3v6H4zm6.5-4h3v14h-3zM17 8h3v8h-3z",
};
const MIC_LABELS = { on: "Microphone on", off: "Microphone off", speaking: "Speaking" };
const MORE_ICON = "M12 8a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm0 2a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm0 6a2 2 0 1 0 0 4 2 2 0 0 0 0-4z";

function icon(path) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const shape = document.createElementNS(SVG_NS, "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}

function button(label, text, className, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  element.setAttribute("aria-label", label);
  element.addEventListener("click", onClick);
  return element;
}

function initial(name) {
  return Array.from((name || "?").trim() || "?")[0].toUpperCase();
}

let menuIds = 0;

export class PeoplePanel {
  // onLobbyChange(waiting, added): whenever who waits changes; `waiting` is the requests
  // waiting now, oldest first, `added` the request that just started waiting (else null).
  // isPinned(peerId): whether that person is pinned to our stage (pin.js), for Pin / Unpin.
  constructor({
    list, countElements, lobbySection, lobbyList, hostControls, onAction, onLobbyChange, isPinned,
    isSpotlit,
  }) {
    this.list = list;
    this.countElements = countElements;
    this.lobbySection = lobbySection;
    this.lobbyList = lobbyList;
    this.hostControls = hostControls;
    this.onAction = onAction || (() => {});
    this.onLobbyChange = onLobbyChange || (() => {});
    this.isPinned = isPinned || (() => false);
    // isSpotlit(peerId): whether the host's spotlight is on that person (for everyone).
    this.isSpotlit = isSpotlit || (() => false);
    this.rows = new Map(); // peerId -> row
    this.waiting = new Map(); // requestId -> <li>
    this.requests = new Map(); // requestId -> request (waiting)
    this.moderator = false;
    this.ownRole = "";
    this.activeSpeaker = null;
    this.openRow = null; // the row whose ⋮ menu is open
    // A click anywhere else closes an open menu (as a menu does); focus stays where it went.
    document.addEventListener("click", (event) => {
      if (this.openRow && !this.openRow.element.contains(event.target)) this._closeMenu(false);
    });
  }

  // Who waits now, oldest first.
  waitingRequests() {
    return [...this.requests.values()];
  }

  // ownRole: our role in the call ("host", "cohost", "participant"): a co-host may not remove
  // another co-host, so that item is not offered (rooms.moderation says the same).
  setModerator(moderator, ownRole = "") {
    this.moderator = moderator;
    this.ownRole = ownRole;
    if (this.hostControls) this.hostControls.hidden = !moderator;
    this._closeMenu(false);
    if (!moderator) this.clearLobby();
  }

  upsert(peerId, { displayName, role = "", isLocal = false }) {
    let row = this.rows.get(peerId);
    if (!row) {
      const element = document.createElement("li");
      element.className = "person";
      element.dataset.peerId = peerId;
      const avatar = document.createElement("span");
      avatar.className = "person-avatar";
      avatar.setAttribute("aria-hidden", "true");
      const name = document.createElement("span");
      name.className = "person-name";
      const detail = document.createElement("span");
      detail.className = "person-role muted";
      const mic = document.createElement("span");
      mic.className = "person-mic";
      mic.setAttribute("role", "img");
      const more = document.createElement("button");
      more.type = "button";
      more.className = "icon-button person-more";
      more.setAttribute("aria-haspopup", "menu");
      more.setAttribute("aria-expanded", "false");
      more.append(icon(MORE_ICON));
      const menu = document.createElement("div");
      menu.className = "menu person-menu";
      menu.setAttribute("role", "menu");
      menu.id = `person-menu-${(menuIds += 1)}`;
      menu.hidden = true;
      more.setAttribute("aria-controls", menu.id);
      element.append(avatar, name, detail, mic, more, menu);
      row = {
        element, avatar, name, detail, mic, more, menu, isLocal, role, displayName, muted: true,
      };
      more.addEventListener("click", () => this._toggleMenu(row));
      more.addEventListener("keydown", (event) => {
        // ArrowDown / ArrowUp on a menu button open its menu at the first / last item.
        if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
        event.preventDefault();
        this._openMenu(row, event.key === "ArrowUp" ? "last" : "first");
      });
      menu.addEventListener("keydown", (event) => this._onMenuKey(row, event));
      this.rows.set(peerId, row);
      if (isLocal) this.list.prepend(element);
      else this.list.append(element);
      this._renderMic(row);
    }
    row.displayName = displayName;
    row.role = role || row.role;
    row.avatar.textContent = initial(displayName);
    row.name.textContent = isLocal || row.isLocal ? `${displayName} (You)` : displayName;
    row.detail.textContent = { host: "Meeting host", cohost: "Co-host", guest: "Guest" }[row.role] || "";
    row.more.setAttribute("aria-label", `More options for ${row.isLocal ? "yourself" : displayName}`);
    row.menu.setAttribute("aria-label", `Options for ${row.isLocal ? "yourself" : displayName}`);
    row.more.title = "More options";
    this._count();
  }

  // --- the ⋮ menu (WAI-ARIA menu button) ------------------------------------------------------
  // What this person may do with this row, now.
  _menuItems(row) {
    const peerId = row.element.dataset.peerId;
    const items = [];
    items.push(this.isPinned(peerId)
      ? { text: "Unpin", action: "unpin" }
      : { text: "Pin", action: "pin" });
    if (this.moderator && !row.isLocal && !row.muted) items.push({ text: "Mute", action: "muteParticipant" });
    if (this.moderator) {
      items.push(this.isSpotlit(peerId)
        ? { text: "Remove spotlight", action: "removeSpotlight" }
        : { text: "Spotlight for everyone", action: "spotlightForEveryone" });
    }
    if (this.moderator && !row.isLocal) {
      const removable = row.role !== "host" && !(this.ownRole === "cohost" && row.role === "cohost");
      if (removable) items.push({ text: "Remove from call", action: "removeParticipant", danger: true });
    }
    return items.map(({ text, action, danger }) => {
      const item = document.createElement("button");
      item.type = "button";
      item.className = danger ? "menu-item danger-link" : "menu-item";
      item.setAttribute("role", "menuitem");
      item.tabIndex = -1;
      item.textContent = text;
      item.addEventListener("click", () => {
        this._closeMenu(true);
        this.onAction(action, { peerId });
      });
      return item;
    });
  }

  _toggleMenu(row) {
    if (this.openRow === row) this._closeMenu(true);
    else this._openMenu(row, "first");
  }

  _openMenu(row, focus) {
    this._closeMenu(false);
    row.menu.replaceChildren(...this._menuItems(row));
    row.menu.hidden = false;
    row.more.setAttribute("aria-expanded", "true");
    this.openRow = row;
    const items = this._items(row);
    (focus === "last" ? items[items.length - 1] : items[0]).focus();
  }

  // returnFocus: back to the ⋮ button (Escape, a choice), not where a click outside went.
  _closeMenu(returnFocus) {
    const row = this.openRow;
    if (!row) return;
    this.openRow = null;
    row.menu.hidden = true;
    row.menu.replaceChildren();
    row.more.setAttribute("aria-expanded", "false");
    if (returnFocus && row.element.isConnected) row.more.focus();
  }

  _items(row) {
    return [...row.menu.querySelectorAll('[role="menuitem"]')];
  }

  _onMenuKey(row, event) {
    const items = this._items(row);
    const index = items.indexOf(document.activeElement);
    let next = null;
    if (event.key === "ArrowDown") next = items[(index + 1) % items.length];
    else if (event.key === "ArrowUp") next = items[(index - 1 + items.length) % items.length];
    else if (event.key === "Home") next = items[0];
    else if (event.key === "End") next = items[items.length - 1];
    else if (event.key === "Escape") {
      // Only the menu closes, not the panel around it (main.js closes panels on Escape).
      event.stopPropagation();
      event.preventDefault();
      this._closeMenu(true);
      return;
    } else if (event.key === "Tab") {
      this._closeMenu(false);
      return;
    }
    if (next) {
      event.preventDefault();
      next.focus();
    }
  }

  // --- microphones ------------------------------------------------------------------------------
  _renderMic(row) {
    const speaking = !row.muted && this.activeSpeaker === row.element.dataset.peerId;
    const state = row.muted ? "off" : speaking ? "speaking" : "on";
    if (row.mic.dataset.state === state) return;
    row.mic.dataset.state = state;
    row.mic.setAttribute("aria-label", MIC_LABELS[state]);
    row.mic.title = MIC_LABELS[state];
    row.mic.replaceChildren(icon(MIC_ICONS[state]));
    row.element.classList.toggle("person-muted", row.muted);
  }

  // The active speaker (the SFU's activeSpeaker), or null: their icon shows them speaking.
  setActiveSpeaker(peerId) {
    this.activeSpeaker = peerId;
    for (const row of this.rows.values()) this._renderMic(row);
  }

  setMicMuted(peerId, muted) {
    const row = this.rows.get(peerId);
    if (!row) return;
    row.muted = muted;
    this._renderMic(row);
  }

  remove(peerId) {
    const row = this.rows.get(peerId);
    if (row && this.openRow === row) this._closeMenu(false);
    if (row) row.element.remove();
    this.rows.delete(peerId);
    this._count();
  }

  clear() {
    for (const peerId of [...this.rows.keys()]) this.remove(peerId);
    this.clearLobby();
  }

  // --- the lobby (moderators) ----------------------------------------------------------------
  // request: {requestId, displayName, peerId, isGuest, state, requestedAt}
  addKnock(request) {
    if (!this.moderator || !request || request.requestId === undefined) return;
    if (request.state && request.state !== "waiting") {
      this.resolveKnock(request.requestId);
      return;
    }
    let item = this.waiting.get(request.requestId);
    const added = !item;
    if (!item) {
      item = document.createElement("li");
      item.className = "person lobby-person";
      this.waiting.set(request.requestId, item);
      this.lobbyList.append(item);
    }
    this.requests.set(request.requestId, request);
    const name = request.displayName || "Someone";
    const avatar = document.createElement("span");
    avatar.className = "person-avatar";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = initial(name);
    const label = document.createElement("span");
    label.className = "person-name";
    label.textContent = name;
    const detail = document.createElement("span");
    detail.className = "person-role muted";
    detail.textContent = request.isGuest ? "Guest, asking to join" : "Asking to join";
    const tools = document.createElement("span");
    tools.className = "person-tools";
    tools.append(
      button(`Admit ${name}`, "Admit", "link-button", () => this.onAction("admitEntry", { requestId: request.requestId })),
      button(`Deny ${name}`, "Deny", "link-button danger-link", () => this.onAction("denyEntry", { requestId: request.requestId })),
    );
    item.replaceChildren(avatar, label, detail, tools);
    this.lobbySection.hidden = false;
    this.onLobbyChange(this.waitingRequests(), added ? request : null);
  }

  resolveKnock(requestId) {
    const item = this.waiting.get(requestId);
    if (!item) return;
    item.remove();
    this.waiting.delete(requestId);
    this.requests.delete(requestId);
    this.lobbySection.hidden = this.waiting.size === 0;
    this.onLobbyChange(this.waitingRequests(), null);
  }

  clearLobby() {
    for (const requestId of [...this.waiting.keys()]) this.resolveKnock(requestId);
  }

  _count() {
    for (const element of this.countElements) element.textContent = String(this.rows.size);
  }
}
