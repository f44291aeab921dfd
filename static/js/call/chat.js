// The chat panel. A message is shown at once as "Sending…", marked sent only when the server's
// response arrives (it is stored before it is broadcast), and offers "Retry" on failure; a retry
// reuses the clientId, which the server treats idempotently. After a reconnect the panel fetches
// what it missed with chatHistory {sinceId}. Text goes in as text nodes (chat-render.js).
// Moderators (host, co-host) get a "Delete message" button on each message; the deletion
// reaches everyone as chatMessageDeleted, so the panel waits for that rather than guessing.
// Messages are identified by their server id. A clientId is the sender's own: it only matches
// our own message that has no server id yet, and only when the incoming message is ours (the
// response to our request, or one whose authorPeerId is our peer id). Another author's message
// with the same clientId is a message of its own, so nobody can overwrite or hide another's.

import { renderMessageText } from "../chat-render.js";
import { formatTime, uuid } from "./util.js";

const MAX_MESSAGE_LENGTH = 2000;

function renderText(element, message) {
  // Text nodes and http(s) links only; never parsed as HTML (static/js/chat-render.js).
  renderMessageText(element, message.text);
}

export class ChatPanel extends EventTarget {
  constructor({ list, form, input, errorElement }) {
    super();
    this.list = list;
    this.form = form;
    this.input = input;
    this.errorElement = errorElement;
    this.signaling = null;
    this.peerId = null; // ours: a history or broadcast message with this authorPeerId is ours
    this.entries = new Set(); // every entry shown
    this.byId = new Map(); // server id -> entry
    this.unconfirmed = new Map(); // clientId -> our own entry that has no server id yet
    this.lastId = 0;
    this.moderator = false;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendFromInput();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        this.sendFromInput();
      }
    });
  }

  setSignaling(signaling) {
    this.signaling = signaling;
  }

  // The peer id this tab joins with (the server stores it as the message's authorPeerId).
  setPeerId(peerId) {
    this.peerId = peerId || null;
  }

  // The join response says the role; messages already shown gain or lose the delete button.
  setModerator(moderator) {
    if (this.moderator === Boolean(moderator)) return;
    this.moderator = Boolean(moderator);
    for (const entry of this.entries.values()) this._render(entry);
  }

  async deleteMessage(entry) {
    if (!this.signaling || typeof entry.message.id !== "number") return;
    this.errorElement.textContent = "";
    try {
      await this.signaling.request("deleteChatMessage", { messageId: entry.message.id });
      this.markDeleted(entry.message.id);
    } catch (error) {
      this.errorElement.textContent = `The message could not be deleted: ${error.message || "error"}.`;
    }
  }

  // Another room's call (breakout rooms): its own chat, so nothing of this one stays shown.
  reset() {
    this.entries.clear();
    this.byId.clear();
    this.unconfirmed.clear();
    this.lastId = 0;
    this.list.replaceChildren();
    this.errorElement.textContent = "";
  }

  async loadHistory(messages) {
    for (const message of messages || []) this._upsert(message);
  }

  // After a reconnect: everything after the newest message we have, then resend failures.
  async catchUp() {
    if (!this.signaling) return;
    try {
      const data = await this.signaling.request("chatHistory", { sinceId: this.lastId });
      await this.loadHistory(data.messages);
    } catch (error) {
      console.warn("chatHistory failed", error);
    }
    for (const entry of this.entries.values()) {
      if (entry.state === "failed" && entry.failedOffline) this._trySend(entry);
    }
  }

  // A broadcast. For our own message it does not count as confirmation: only the response to
  // our request (or the stored history) marks a message sent.
  receive(message) {
    if (this._upsert(message, { confirms: false })) {
      // The call shows a short preview while the panel is closed (as Meet does).
      this.dispatchEvent(new CustomEvent("unread", { detail: { message } }));
    }
  }

  markDeleted(messageId) {
    const entry = this.byId.get(messageId);
    if (!entry) return;
    entry.message = { ...entry.message, deleted: true, text: "" };
    this._render(entry);
  }

  sendFromInput() {
    const text = this.input.value.trim();
    if (!text) return;
    if (text.length > MAX_MESSAGE_LENGTH) {
      this.errorElement.textContent = `Messages can be at most ${MAX_MESSAGE_LENGTH} characters.`;
      return;
    }
    this.errorElement.textContent = "";
    this.input.value = "";
    this.send(text);
  }

  send(text) {
    const clientId = uuid();
    const entry = {
      state: "sending",
      message: { id: null, clientId, authorName: "You", text, sentAt: new Date().toISOString(), deleted: false },
      element: null,
      mine: true,
    };
    this.entries.add(entry);
    this.unconfirmed.set(clientId, entry);
    this._render(entry);
    this._trySend(entry);
  }

  async _trySend(entry) {
    entry.state = "sending";
    entry.failedOffline = false;
    this._render(entry);
    try {
      if (!this.signaling) throw new Error("not connected");
      const data = await this.signaling.request("chatMessage", {
        clientId: entry.message.clientId, text: entry.message.text,
      });
      this._upsert(data.message, { sender: entry });
    } catch (error) {
      if (entry.state !== "sending") return; // the history already confirmed it
      entry.state = "failed";
      entry.failedOffline = error.code === "disconnected";
      entry.error = error.message || "not sent";
      this._render(entry);
    }
  }

  // Returns true when the message was not shown before (someone else's new message).
  // `sender`: our entry whose chatMessage request this message answers.
  _upsert(message, { confirms = true, sender = null } = {}) {
    if (!message || typeof message.id !== "number") return false;
    let isNew = false;
    let entry = this.byId.get(message.id);
    const own = this._ownEntryFor(message, sender);
    if (own && own !== entry) {
      // Ours, already shown as someone else's (say its authorPeerId was missing): keep ours.
      if (entry) this._drop(entry);
      entry = own;
    }
    if (entry) {
      if (entry.mine && this.unconfirmed.get(message.clientId) === entry) {
        this.unconfirmed.delete(message.clientId);
      }
      entry.message = { ...message, authorName: entry.mine ? "You" : message.authorName };
    } else {
      entry = { message, element: null, mine: false };
      this.entries.add(entry);
      isNew = true;
    }
    if (confirms || !entry.state || entry.state === "sent") entry.state = "sent";
    this.byId.set(message.id, entry);
    this.lastId = Math.max(this.lastId, message.id);
    this._render(entry);
    return isNew;
  }

  // Our own entry that this message confirms, if any: the entry whose request it answers, or
  // (history, broadcast) our unconfirmed entry with its clientId when the message is ours.
  _ownEntryFor(message, sender) {
    if (sender) {
      const sameMessage = sender.message.clientId === message.clientId
        && (sender.message.id === null || sender.message.id === message.id);
      return sameMessage ? sender : null;
    }
    if (!this.peerId || message.authorPeerId !== this.peerId || !message.clientId) return null;
    return this.unconfirmed.get(message.clientId) || null;
  }

  _drop(entry) {
    this.entries.delete(entry);
    if (entry.element) entry.element.remove();
  }

  _render(entry) {
    const isNew = entry.element === null;
    if (isNew) {
      entry.element = document.createElement("li");
      entry.element.className = "chat-message";
    }
    const { element, message } = entry;
    element.replaceChildren();
    element.dataset.state = entry.state;
    element.classList.toggle("chat-message-mine", Boolean(entry.mine));
    if (message.id !== null) element.dataset.messageId = String(message.id);

    const header = document.createElement("div");
    header.className = "chat-message-header";
    const author = document.createElement("span");
    author.className = "chat-author";
    author.textContent = message.authorName || "Someone";
    if (message.authorIsGuest && !entry.mine) {
      // A guest's name is one they typed: marked, so nobody passes for someone with an account.
      const mark = document.createElement("span");
      mark.className = "guest-mark";
      mark.textContent = " (guest)";
      author.append(mark);
    }
    const time = document.createElement("time");
    time.className = "chat-time";
    time.dateTime = message.sentAt || "";
    time.textContent = formatTime(message.sentAt);
    header.append(author, " ", time);

    const body = document.createElement("p");
    body.className = "chat-text";
    if (message.deleted) {
      body.classList.add("chat-deleted");
      body.textContent = "This message was deleted";
    } else {
      renderText(body, message);
    }
    element.append(header, body);

    if (this.moderator && !message.deleted && typeof message.id === "number") {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link-button chat-delete";
      remove.textContent = "Delete";
      remove.setAttribute("aria-label", "Delete message");
      remove.addEventListener("click", () => this.deleteMessage(entry));
      header.append(" ", remove);
    }

    if (entry.state === "sending") {
      const status = document.createElement("span");
      status.className = "chat-status";
      status.textContent = "Sending…";
      element.append(status);
    } else if (entry.state === "failed") {
      const status = document.createElement("span");
      status.className = "chat-status chat-status-failed";
      status.textContent = "Not sent. ";
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "link-button";
      retry.textContent = "Retry";
      retry.addEventListener("click", () => this._trySend(entry));
      status.append(retry);
      element.append(status);
    }
    if (isNew || (message.id !== null && element.parentNode === this.list)) this._place(entry);
  }

  // Keep server-ordered messages sorted by id; unsent ones stay at the end.
  _place(entry) {
    const id = entry.message.id;
    const nearBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    if (id === null) {
      this.list.append(entry.element);
    } else {
      let before = null;
      for (const child of this.list.children) {
        if (child === entry.element) continue;
        const childId = child.dataset.messageId ? Number(child.dataset.messageId) : Infinity;
        if (childId > id) { before = child; break; }
      }
      if (before !== entry.element.nextSibling || entry.element.parentNode !== this.list) {
        this.list.insertBefore(entry.element, before);
      }
    }
    if (nearBottom || entry.mine) this.list.scrollTop = this.list.scrollHeight;
  }
}
