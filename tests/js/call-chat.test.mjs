// Unit tests for the call page's chat panel (static/js/call/chat.js, ChatPanel) with node's
// built-in runner (`node --test tests/js/`). A small DOM shim stands in for the page and a
// scripted signaling client for the server: each request waits until the test answers it.
//
// The rule under test (issue 11): messages are identified by their server id; a clientId only
// matches the sender's own unconfirmed message, so no participant can overwrite or hide
// another's message by reusing its clientId.
import assert from "node:assert/strict";
import { test } from "node:test";

import { doc } from "./dom-shim.mjs";

globalThis.document = doc;

const { ChatPanel } = await import("../../static/js/call/chat.js");

// --- the scripted server ------------------------------------------------------------------

class ScriptedSignaling {
  constructor() {
    this.requests = [];
  }
  request(method, data) {
    return new Promise((resolve, reject) => {
      this.requests.push({ method, data, resolve, reject });
    });
  }
  // The oldest request of that method not answered yet.
  pending(method) {
    const request = this.requests.find((r) => r.method === method && !r.answered);
    assert.ok(request, `expected a pending ${method} request`);
    request.answered = true;
    return request;
  }
  sent(method) {
    return this.requests.filter((r) => r.method === method).map((r) => r.data);
  }
}

function disconnectedError() {
  const error = new Error("disconnected");
  error.code = "disconnected";
  return error;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

const ME = "peer-me";
const OTHER = "peer-mallory";

function panel({ peerId = ME, moderator = false } = {}) {
  const list = doc.createElement("ul");
  const chat = new ChatPanel({
    list,
    form: doc.createElement("form"),
    input: doc.createElement("textarea"),
    errorElement: doc.createElement("p"),
  });
  const signaling = new ScriptedSignaling();
  chat.setSignaling(signaling);
  if (peerId) chat.setPeerId(peerId);
  if (moderator) chat.setModerator(true);
  let unread = 0;
  const unreadMessages = [];
  chat.addEventListener("unread", (event) => {
    unread += 1;
    unreadMessages.push(event.detail.message);
  });
  return { chat, list, signaling, unread: () => unread, unreadMessages };
}

function message(id, clientId, fields = {}) {
  return {
    id, clientId, authorName: "Ada", text: `message ${id}`,
    sentAt: "2026-11-24T12:00:05.123Z", deleted: false, authorPeerId: ME, ...fields,
  };
}

function find(element, predicate) {
  if (element.nodeType !== 1) return null;
  if (predicate(element)) return element;
  for (const child of element.children) {
    const found = find(child, predicate);
    if (found) return found;
  }
  return null;
}

const byClass = (name) => (element) => element.classes.has(name);

// What the list shows, one row per message, top to bottom.
function shown(list) {
  return list.children.map((item) => ({
    id: item.dataset.messageId === undefined ? null : Number(item.dataset.messageId),
    state: item.dataset.state,
    author: find(item, byClass("chat-author")).textContent,
    text: find(item, byClass("chat-text")).textContent,
  }));
}

// Sends "text" and returns the clientId the panel used.
function send(chat, signaling, text) {
  chat.send(text);
  const request = signaling.requests.at(-1);
  assert.equal(request.method, "chatMessage");
  assert.equal(request.data.text, text);
  return request.data.clientId;
}

// --- honest use ---------------------------------------------------------------------------

test("my own message is confirmed by the response and shown once", async () => {
  const { chat, list, signaling, unread } = panel();
  const clientId = send(chat, signaling, "hello");
  assert.deepEqual(shown(list), [{ id: null, state: "sending", author: "You", text: "hello" }]);
  assert.ok(find(list.children[0], byClass("chat-status")).textContent.includes("Sending"));

  // The broadcast of our own message comes first: it is not the confirmation.
  chat.receive(message(7, clientId, { text: "hello" }));
  assert.deepEqual(shown(list), [{ id: 7, state: "sending", author: "You", text: "hello" }]);

  signaling.pending("chatMessage").resolve({ message: message(7, clientId, { text: "hello" }) });
  await tick();
  assert.deepEqual(shown(list), [{ id: 7, state: "sent", author: "You", text: "hello" }]);
  assert.equal(find(list.children[0], byClass("chat-status")), null);
  assert.equal(unread(), 0, "my own message is not unread");
});

test("the response before the broadcast also shows my message once", async () => {
  const { chat, list, signaling, unread } = panel();
  const clientId = send(chat, signaling, "hello");
  signaling.pending("chatMessage").resolve({ message: message(3, clientId, { text: "hello" }) });
  await tick();
  chat.receive(message(3, clientId, { text: "hello" }));
  assert.deepEqual(shown(list), [{ id: 3, state: "sent", author: "You", text: "hello" }]);
  assert.equal(unread(), 0);
});

test("a failed message offers Retry, which resends with the same clientId", async () => {
  const { chat, list, signaling } = panel();
  const clientId = send(chat, signaling, "again");
  const refusal = new Error("Chat is busy; try again.");
  refusal.code = "busy";
  signaling.pending("chatMessage").reject(refusal);
  await tick();
  assert.equal(shown(list)[0].state, "failed");
  const retry = find(list.children[0], (element) => element.textContent === "Retry" && element.tagName === "BUTTON");
  assert.ok(retry, "a Retry button");
  retry.click();
  assert.equal(shown(list)[0].state, "sending");
  assert.deepEqual(signaling.sent("chatMessage").map((data) => data.clientId), [clientId, clientId]);
  signaling.pending("chatMessage").resolve({ message: message(4, clientId, { text: "again" }) });
  await tick();
  assert.deepEqual(shown(list), [{ id: 4, state: "sent", author: "You", text: "again" }]);
});

test("others' new messages are shown in id order and raise unread", () => {
  const { chat, list, unread } = panel();
  chat.loadHistory([message(1, "a", { authorName: "Bob", authorPeerId: OTHER })]);
  chat.receive(message(3, "c", { authorName: "Cy", authorPeerId: "peer-cy" }));
  chat.receive(message(2, "b", { authorName: "Bob", authorPeerId: OTHER }));
  chat.receive(message(2, "b", { authorName: "Bob", authorPeerId: OTHER })); // a repeat
  assert.deepEqual(shown(list).map((row) => [row.id, row.author]), [[1, "Bob"], [2, "Bob"], [3, "Cy"]]);
  assert.equal(unread(), 2);
});

test("after a reconnect my message from history confirms my unsent entry", async () => {
  const { chat, list, signaling } = panel();
  chat.loadHistory([message(1, "old", { authorName: "Bob", authorPeerId: OTHER })]);
  const clientId = send(chat, signaling, "lost answer");
  // The server stored it, but the socket dropped before the response came back.
  signaling.pending("chatMessage").reject(disconnectedError());
  await tick();
  assert.equal(shown(list)[1].state, "failed");

  const catchingUp = chat.catchUp();
  const history = signaling.pending("chatHistory");
  assert.deepEqual(history.data, { sinceId: 1 });
  history.resolve({ messages: [message(2, clientId, { text: "lost answer" })] });
  await catchingUp;
  assert.deepEqual(shown(list), [
    { id: 1, state: "sent", author: "Bob", text: "message 1" },
    { id: 2, state: "sent", author: "You", text: "lost answer" },
  ]);
  assert.equal(signaling.sent("chatMessage").length, 1, "a confirmed message is not sent again");
});

test("after a reconnect a message still missing from history is sent again", async () => {
  const { chat, list, signaling } = panel();
  const clientId = send(chat, signaling, "offline");
  signaling.pending("chatMessage").reject(disconnectedError());
  await tick();
  const catchingUp = chat.catchUp();
  signaling.pending("chatHistory").resolve({ messages: [] });
  await catchingUp;
  assert.deepEqual(signaling.sent("chatMessage").map((data) => data.clientId), [clientId, clientId]);
  signaling.pending("chatMessage").resolve({ message: message(5, clientId, { text: "offline" }) });
  await tick();
  assert.deepEqual(shown(list), [{ id: 5, state: "sent", author: "You", text: "offline" }]);
});

test("a moderator's delete button deletes that message only", async () => {
  const { chat, list, signaling } = panel({ moderator: true });
  chat.loadHistory([
    message(1, "x", { authorName: "Bob", authorPeerId: OTHER }),
    message(2, "y", { authorName: "Cy", authorPeerId: "peer-cy" }),
  ]);
  const remove = find(list.children[1], byClass("chat-delete"));
  assert.ok(remove, "a delete button");
  assert.equal(remove.getAttribute("aria-label"), "Delete message");
  remove.click();
  const request = signaling.pending("deleteChatMessage");
  assert.deepEqual(request.data, { messageId: 2 });
  request.resolve({});
  await tick();
  assert.deepEqual(shown(list).map((row) => row.text), ["message 1", "This message was deleted"]);
  assert.equal(find(list.children[1], byClass("chat-delete")), null);
});

test("the response claims my message even when its broadcast was shown as someone else's", async () => {
  // Without a peer id (or an authorPeerId) the broadcast cannot be told to be ours; the response
  // to our own request can, and the message is then shown once, as ours.
  const { chat, list, signaling } = panel({ peerId: null });
  const clientId = send(chat, signaling, "hello");
  chat.receive(message(6, clientId, { authorName: "Ada", text: "hello" }));
  assert.equal(list.children.length, 2);
  signaling.pending("chatMessage").resolve({ message: message(6, clientId, { text: "hello" }) });
  await tick();
  assert.deepEqual(shown(list), [{ id: 6, state: "sent", author: "You", text: "hello" }]);
  chat.markDeleted(6);
  assert.deepEqual(shown(list).map((row) => row.text), ["This message was deleted"]);
});

// --- another author reusing my clientId ---------------------------------------------------

test("another author's message with my clientId does not replace mine", async () => {
  const { chat, list, signaling, unread, unreadMessages } = panel();
  const clientId = send(chat, signaling, "my words");
  signaling.pending("chatMessage").resolve({ message: message(1, clientId, { text: "my words" }) });
  await tick();

  chat.receive(message(2, clientId, { authorName: "Mallory", authorPeerId: OTHER, text: "not your words" }));
  assert.deepEqual(shown(list), [
    { id: 1, state: "sent", author: "You", text: "my words" },
    { id: 2, state: "sent", author: "Mallory", text: "not your words" },
  ], "my message keeps its text and author; Mallory's is a message of its own");
  assert.equal(unread(), 1, "Mallory's message is new");
  // The unread event carries the message, for the call's preview while the panel is closed.
  assert.equal(unreadMessages[0].authorName, "Mallory");
  assert.equal(unreadMessages[0].text, "not your words");
});

test("a broadcast with a known clientId from someone else is shown as a new message", async () => {
  const { chat, list, signaling, unread } = panel();
  const clientId = send(chat, signaling, "still sending");
  // Mallory's copy of the clientId arrives while ours is unconfirmed.
  chat.receive(message(1, clientId, { authorName: "Mallory", authorPeerId: OTHER, text: "hijack" }));
  assert.deepEqual(shown(list), [
    { id: 1, state: "sent", author: "Mallory", text: "hijack" },
    { id: null, state: "sending", author: "You", text: "still sending" },
  ], "Mallory's message does not take over my unconfirmed one");
  assert.equal(unread(), 1);

  signaling.pending("chatMessage").resolve({ message: message(2, clientId, { text: "still sending" }) });
  await tick();
  assert.deepEqual(shown(list), [
    { id: 1, state: "sent", author: "Mallory", text: "hijack" },
    { id: 2, state: "sent", author: "You", text: "still sending" },
  ]);
});

test("a message with my clientId but no author peer id does not take over mine", () => {
  const { chat, list, signaling } = panel();
  const clientId = send(chat, signaling, "mine");
  const { authorPeerId, ...anonymous } = message(1, clientId, { authorName: "Someone", text: "theirs" });
  assert.equal(authorPeerId, ME);
  chat.receive(anonymous);
  assert.deepEqual(shown(list).map((row) => [row.id, row.author, row.text]), [
    [1, "Someone", "theirs"],
    [null, "You", "mine"],
  ]);
});

test("a deleted notice for another's id does not touch mine", async () => {
  const { chat, list, signaling } = panel();
  const clientId = send(chat, signaling, "keep me");
  signaling.pending("chatMessage").resolve({ message: message(1, clientId, { text: "keep me" }) });
  await tick();
  chat.receive(message(2, clientId, { authorName: "Mallory", authorPeerId: OTHER, text: "decoy" }));
  chat.markDeleted(2);
  assert.deepEqual(shown(list).map((row) => [row.id, row.author, row.text]), [
    [1, "You", "keep me"],
    [2, "Mallory", "This message was deleted"],
  ], "only Mallory's message is deleted");
});

test("another author's deleted message with my clientId does not hide mine", async () => {
  const { chat, list, signaling } = panel();
  const clientId = send(chat, signaling, "visible");
  signaling.pending("chatMessage").resolve({ message: message(1, clientId, { text: "visible" }) });
  await tick();
  chat.loadHistory([message(9, clientId, { authorName: "Mallory", authorPeerId: OTHER, text: "", deleted: true })]);
  assert.deepEqual(shown(list).map((row) => [row.id, row.text]), [
    [1, "visible"],
    [9, "This message was deleted"],
  ]);
});

test("history from another author with my clientId does not confirm my unsent entry", async () => {
  const { chat, list, signaling } = panel();
  const clientId = send(chat, signaling, "unsent");
  signaling.pending("chatMessage").reject(disconnectedError());
  await tick();
  const catchingUp = chat.catchUp();
  signaling.pending("chatHistory").resolve({
    messages: [message(4, clientId, { authorName: "Mallory", authorPeerId: OTHER, text: "fake" })],
  });
  await catchingUp;
  assert.deepEqual(shown(list).map((row) => [row.id, row.state, row.author, row.text]), [
    [4, "sent", "Mallory", "fake"],
    [null, "sending", "You", "unsent"],
  ], "mine is still unconfirmed and is sent again");
  assert.deepEqual(signaling.sent("chatMessage").map((data) => data.clientId), [clientId, clientId]);
});
