// Renders a chat message's text for the browser without ever parsing it as HTML.
//
// Everything a person typed becomes text nodes; only http(s) URLs become links, and those are
// built with createElement and property assignment, so a payload such as
// `<img src=x onerror=alert(1)>` or `javascript:alert(1)` stays visible text. The call page's chat
// panel (static/js/call/chat.js) imports this module and calls renderMessageText.

// A URL runs to the next whitespace or to a character that cannot be part of one in chat
// (quotes and angle brackets usually wrap a link rather than belong to it).
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
// Punctuation that ends a sentence is not part of the link: "see https://x.org/a." links x.org/a.
const TRAILING_PUNCTUATION = /[.,;:!?'"*_~]+$/;

function trimUrl(candidate) {
  let url = candidate.replace(TRAILING_PUNCTUATION, "");
  // A closing parenthesis belongs to the URL only when it closes one opened inside it, as in
  // https://en.wikipedia.org/wiki/Meet_(software); otherwise it closes the sentence's "(...)".
  while (url.endsWith(")") && countOf(url, "(") < countOf(url, ")")) {
    url = url.slice(0, -1).replace(TRAILING_PUNCTUATION, "");
  }
  return url;
}

function countOf(text, character) {
  return text.split(character).length - 1;
}

function safeHref(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function linkElement(doc, href, label) {
  const link = doc.createElement("a");
  link.setAttribute("href", href);
  link.setAttribute("rel", "noopener noreferrer nofollow");
  link.setAttribute("target", "_blank");
  link.textContent = label;
  return link;
}

/**
 * The message text as a DocumentFragment of text nodes and <a> links (http and https only).
 * @param {string} text what the person typed
 * @param {Document} [doc] the document that creates the nodes (tests pass a small shim)
 * @returns {DocumentFragment}
 */
export function messageTextFragment(text, doc = globalThis.document) {
  const fragment = doc.createDocumentFragment();
  const source = typeof text === "string" ? text : String(text ?? "");
  let position = 0;
  for (const match of source.matchAll(URL_PATTERN)) {
    const url = trimUrl(match[0]);
    const href = url ? safeHref(url) : null;
    if (!href) continue;
    if (match.index > position) {
      fragment.appendChild(doc.createTextNode(source.slice(position, match.index)));
    }
    fragment.appendChild(linkElement(doc, href, url));
    position = match.index + url.length;
  }
  if (position < source.length) {
    fragment.appendChild(doc.createTextNode(source.slice(position)));
  }
  return fragment;
}

/**
 * Replaces the element's children with the rendered message text.
 * @param {Element} element
 * @param {string} text
 */
export function renderMessageText(element, text) {
  element.replaceChildren(messageTextFragment(text, element.ownerDocument));
}
