// The "People" panel: everyone in the call with their microphone state, and for hosts and
// co-hosts the moderation tools (mute, remove, the lobby's admit/deny, lock, end for all).
// Names go in through textContent only. Actions are handed to `onAction(action, data)`.

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

export class PeoplePanel {
  // onLobbyChange(waiting, added): whenever who waits changes; `waiting` is the requests
  // waiting now, oldest first, `added` the request that just started waiting (else null).
  constructor({ list, countElements, lobbySection, lobbyList, hostControls, onAction, onLobbyChange }) {
    this.list = list;
    this.countElements = countElements;
    this.lobbySection = lobbySection;
    this.lobbyList = lobbyList;
    this.hostControls = hostControls;
    this.onAction = onAction || (() => {});
    this.onLobbyChange = onLobbyChange || (() => {});
    this.rows = new Map(); // peerId -> row
    this.waiting = new Map(); // requestId -> <li>
    this.requests = new Map(); // requestId -> request (waiting)
    this.moderator = false;
  }

  // Who waits now, oldest first.
  waitingRequests() {
    return [...this.requests.values()];
  }

  setModerator(moderator) {
    this.moderator = moderator;
    if (this.hostControls) this.hostControls.hidden = !moderator;
    for (const row of this.rows.values()) this._renderTools(row);
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
      const tools = document.createElement("span");
      tools.className = "person-tools";
      element.append(avatar, name, detail, mic, tools);
      row = { element, avatar, name, detail, mic, tools, isLocal, role, displayName };
      this.rows.set(peerId, row);
      if (isLocal) this.list.prepend(element);
      else this.list.append(element);
    }
    row.displayName = displayName;
    row.role = role || row.role;
    row.avatar.textContent = initial(displayName);
    row.name.textContent = isLocal || row.isLocal ? `${displayName} (You)` : displayName;
    row.detail.textContent = { host: "Meeting host", cohost: "Co-host", guest: "Guest" }[row.role] || "";
    this._renderTools(row);
    this._count();
  }

  _renderTools(row) {
    row.tools.replaceChildren();
    // Hosts cannot be removed; nobody moderates themselves.
    if (!this.moderator || row.isLocal) return;
    const peerId = row.element.dataset.peerId;
    row.tools.append(button(`Mute ${row.displayName}`, "Mute", "link-button", () => (
      this.onAction("muteParticipant", { peerId })
    )));
    if (row.role !== "host") {
      row.tools.append(button(`Remove ${row.displayName} from the call`, "Remove", "link-button danger-link", () => (
        this.onAction("removeParticipant", { peerId })
      )));
    }
  }

  setMicMuted(peerId, muted) {
    const row = this.rows.get(peerId);
    if (!row) return;
    row.mic.textContent = muted ? "Microphone off" : "";
    row.element.classList.toggle("person-muted", muted);
  }

  remove(peerId) {
    const row = this.rows.get(peerId);
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
