// Unit tests for static/js/chat-render.js with node's built-in runner (`node --test tests/js/`).
// The shim below is a minimal DOM: enough to build nodes, and it has no HTML parser at all, so
// anything the renderer tried to parse as markup would show up as a missing method.
import assert from "node:assert/strict";
import { test } from "node:test";

import { messageTextFragment, renderMessageText } from "../../static/js/chat-render.js";

class Node {
  constructor(doc) {
    this.ownerDocument = doc;
    this.childNodes = [];
  }
  appendChild(child) {
    this.childNodes.push(child);
    return child;
  }
  replaceChildren(...nodes) {
    this.childNodes = [];
    for (const node of nodes) {
      if (node instanceof Fragment) this.childNodes.push(...node.childNodes);
      else this.childNodes.push(node);
    }
  }
  get textContent() {
    return this.childNodes.map((child) => child.textContent).join("");
  }
}

class Text extends Node {
  constructor(doc, data) {
    super(doc);
    this.nodeType = 3;
    this.data = data;
  }
  get textContent() {
    return this.data;
  }
}

class Fragment extends Node {}

class Element extends Node {
  constructor(doc, tagName) {
    super(doc);
    this.nodeType = 1;
    this.tagName = tagName.toUpperCase();
    this.attributes = new Map();
  }
  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }
  getAttribute(name) {
    return this.attributes.get(name) ?? null;
  }
  set textContent(value) {
    this.childNodes = [new Text(this.ownerDocument, String(value))];
  }
  get textContent() {
    return super.textContent;
  }
}

const doc = {
  createDocumentFragment: () => new Fragment(doc),
  createTextNode: (data) => new Text(doc, data),
  createElement: (tagName) => new Element(doc, tagName),
};

function describe(fragment) {
  return fragment.childNodes.map((node) =>
    node.nodeType === 3
      ? ["text", node.data]
      : [node.tagName, node.getAttribute("href"), node.textContent],
  );
}

test("plain text becomes a single text node", () => {
  assert.deepEqual(describe(messageTextFragment("hello there", doc)), [["text", "hello there"]]);
});

test("html payloads stay text", () => {
  const payload = `<img src=x onerror="alert(1)"><script>alert(2)</script>`;
  const fragment = messageTextFragment(payload, doc);
  assert.deepEqual(describe(fragment), [["text", payload]]);
});

test("http and https urls become links that open safely", () => {
  const fragment = messageTextFragment("see https://example.org/a?b=1 and http://x.test/", doc);
  assert.deepEqual(describe(fragment), [
    ["text", "see "],
    ["A", "https://example.org/a?b=1", "https://example.org/a?b=1"],
    ["text", " and "],
    ["A", "http://x.test/", "http://x.test/"],
  ]);
  const link = fragment.childNodes[1];
  assert.equal(link.getAttribute("rel"), "noopener noreferrer nofollow");
  assert.equal(link.getAttribute("target"), "_blank");
});

test("other schemes are not linked", () => {
  const text = "javascript:alert(1) data:text/html,<b>x</b> ftp://files.test/";
  assert.deepEqual(describe(messageTextFragment(text, doc)), [["text", text]]);
});

test("a url ends before quotes and angle brackets", () => {
  const fragment = messageTextFragment(`https://a.test/"><script>x</script>`, doc);
  assert.deepEqual(describe(fragment), [
    ["A", "https://a.test/", "https://a.test/"],
    ["text", `"><script>x</script>`],
  ]);
});

test("sentence punctuation and unbalanced parentheses stay outside the link", () => {
  const fragment = messageTextFragment(
    "(see https://en.wikipedia.org/wiki/Meet_(software)). Then https://b.test.",
    doc,
  );
  assert.deepEqual(describe(fragment), [
    ["text", "(see "],
    ["A", "https://en.wikipedia.org/wiki/Meet_(software)", "https://en.wikipedia.org/wiki/Meet_(software)"],
    ["text", "). Then "],
    ["A", "https://b.test/", "https://b.test"],
    ["text", "."],
  ]);
});

test("renderMessageText replaces the element's children", () => {
  const element = doc.createElement("p");
  element.textContent = "old";
  renderMessageText(element, "<b>new</b> https://c.test");
  assert.equal(element.textContent, "<b>new</b> https://c.test");
  assert.equal(element.childNodes.length, 2);
  assert.equal(element.childNodes[1].tagName, "A");
});
