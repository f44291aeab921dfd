// A small DOM for the browser code's unit tests under node: enough to build and inspect nodes,
// and no HTML parser at all (no innerHTML), so code that tried to parse text as markup would
// fail on a missing method rather than pass unnoticed.

export class Node {
  constructor(doc) {
    this.ownerDocument = doc;
    this.childNodes = [];
    this.parentNode = null;
  }
  _adopt(nodes) {
    const out = [];
    for (const node of nodes) {
      if (node instanceof Fragment) out.push(...node.childNodes.splice(0));
      else if (typeof node === "string") out.push(new Text(this.ownerDocument, node));
      else out.push(node);
    }
    for (const node of out) {
      if (node.parentNode) node.parentNode._detach(node);
      node.parentNode = this;
    }
    return out;
  }
  _detach(node) {
    const index = this.childNodes.indexOf(node);
    if (index >= 0) this.childNodes.splice(index, 1);
    node.parentNode = null;
  }
  appendChild(child) {
    this.childNodes.push(...this._adopt([child]));
    return child;
  }
  append(...nodes) {
    this.childNodes.push(...this._adopt(nodes));
  }
  replaceChildren(...nodes) {
    for (const child of this.childNodes) child.parentNode = null;
    this.childNodes = [];
    this.append(...nodes);
  }
  insertBefore(node, reference) {
    if (reference === null || reference === undefined) return this.appendChild(node);
    const [adopted] = this._adopt([node]);
    this.childNodes.splice(this.childNodes.indexOf(reference), 0, adopted);
    return node;
  }
  remove() {
    if (this.parentNode) this.parentNode._detach(this);
  }
  get nextSibling() {
    if (!this.parentNode) return null;
    const siblings = this.parentNode.childNodes;
    return siblings[siblings.indexOf(this) + 1] ?? null;
  }
  get textContent() {
    return this.childNodes.map((child) => child.textContent).join("");
  }
}

export class Text extends Node {
  constructor(doc, data) {
    super(doc);
    this.nodeType = 3;
    this.data = data;
  }
  get textContent() {
    return this.data;
  }
}

export class Fragment extends Node {}

export class Element extends Node {
  constructor(doc, tagName) {
    super(doc);
    this.nodeType = 1;
    this.tagName = tagName.toUpperCase();
    this.attributes = new Map();
    this.dataset = {};
    this.listeners = new Map();
    this.classes = new Set();
    this.scrollTop = 0;
    this.scrollHeight = 0;
    this.clientHeight = 0;
    const classes = this.classes;
    this.classList = {
      add: (...names) => names.forEach((name) => classes.add(name)),
      remove: (...names) => names.forEach((name) => classes.delete(name)),
      contains: (name) => classes.has(name),
      toggle: (name, force) => {
        const on = force === undefined ? !classes.has(name) : Boolean(force);
        if (on) classes.add(name);
        else classes.delete(name);
        return on;
      },
    };
  }
  get className() {
    return [...this.classes].join(" ");
  }
  set className(value) {
    this.classes.clear();
    for (const name of String(value).split(/\s+/)) if (name) this.classes.add(name);
  }
  get children() {
    return this.childNodes.filter((node) => node.nodeType === 1);
  }
  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }
  getAttribute(name) {
    return this.attributes.get(name) ?? null;
  }
  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(listener);
  }
  click() {
    for (const listener of this.listeners.get("click") || []) listener({ preventDefault() {} });
  }
  set textContent(value) {
    this.replaceChildren(String(value));
  }
  get textContent() {
    return super.textContent;
  }
}

export const doc = {
  createDocumentFragment: () => new Fragment(doc),
  createTextNode: (data) => new Text(doc, data),
  createElement: (tagName) => new Element(doc, tagName),
};
