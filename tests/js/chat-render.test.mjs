// Unit tests for static/js/chat-render.js with node's built-in runner (`node --test tests/js/`).
// The DOM is tests/js/dom-shim.mjs: enough to build nodes, and it has no HTML parser at all, so
// anything the renderer tried to parse as markup would show up as a missing method.
import assert from "node:assert/strict";
import { test } from "node:test";

import { messageTextFragment, renderMessageText } from "../../static/js/chat-render.js";

import { doc } from "./dom-shim.mjs";

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
