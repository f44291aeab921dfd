// The schedule form's "Invite people" box as chips with completion (issue 12.9), as Google
// Calendar's guest box: typing asks the directory of this instance (GET data-people-url?q=) and
// shows the people found in a listbox; Enter, Tab, a comma or a paste turns the text into chips,
// one per address; Backspace in the empty box removes the last chip.
//
// Progressive enhancement: the <textarea data-invitee-chips> stays in the form, hidden, and
// every change writes the chips' addresses into it, one a line. That is what is submitted, so
// the server's validation (rooms/forms.py) stays the one that decides; without script the box
// is used as typed. The check made here only marks what cannot be an address, so the person
// sees it before sending.
//
// The box is a WAI-ARIA 1.2 combobox (role=combobox, aria-expanded, aria-controls the listbox,
// aria-activedescendant for the option chosen with the arrow keys). All text goes into the page
// through textContent, never as markup: names come from other people.

const DEBOUNCE_MS = 150; // one request per pause in typing, not one per key
const MIN_QUERY_LENGTH = 2; // as rooms/people_directory.py: shorter queries are refused
const SEPARATORS = /[\s,;]+/;

// Lenient on purpose: only what surely is not an address is marked here; the server decides.
const ADDRESS = /^[^\s@,;<>()"]+@([^\s@,;<>()".]+\.)*[^\s@,;<>()".]+$/;

export function looksLikeEmail(text) {
  return ADDRESS.test(text) && (text.split("@")[1].includes(".") || text.endsWith("@localhost"));
}

/** The addresses in pasted or typed text, each as {email, name}: a list separated by commas,
 * semicolons, spaces or lines, and "Ana Lopes <ana@example.com>" as mail programs copy it. */
export function parseAddresses(text) {
  const found = [];
  for (const piece of text.split(/[,;\n]+/)) {
    const named = piece.match(/^\s*"?([^"<]*?)"?\s*<([^<>]*)>\s*$/);
    if (named) {
      const email = named[2].trim();
      if (email) found.push({ email, name: named[1].trim() });
      continue;
    }
    for (const token of piece.split(SEPARATORS)) {
      if (token) found.push({ email: token, name: "" });
    }
  }
  return found;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function readKnownNames() {
  const script = document.getElementById("invitee-names");
  try {
    return new Map(Object.entries(script ? JSON.parse(script.textContent) : {}));
  } catch {
    return new Map();
  }
}

class InviteeChips {
  constructor(textarea, peopleUrl) {
    this.textarea = textarea;
    this.peopleUrl = peopleUrl;
    this.form = textarea.form;
    this.chips = []; // {email, name, valid}
    this.knownNames = readKnownNames(); // lower-cased address → name, from the page and replies
    this.options = []; // the people the listbox shows now
    this.activeIndex = -1;
    this.timer = null;
    this.latestRequest = 0; // replies to older requests are dropped (they may come late)
    this.build();
    for (const { email, name } of parseAddresses(textarea.value)) this.add(email, name, { quiet: true });
    this.sync();
  }

  build() {
    const id = this.textarea.id;
    const field = this.textarea.closest(".field") || this.textarea.parentElement;
    this.box = element("div", "chips-box");
    this.list = element("ul", "chips");
    this.list.setAttribute("aria-label", "People invited");
    this.input = element("input", "chips-input");
    Object.assign(this.input, { type: "text", id: `${id}_entry`, autocomplete: "off", spellcheck: false });
    this.listbox = element("ul", "chips-options");
    this.listbox.id = `${id}_options`;
    this.listbox.setAttribute("role", "listbox");
    this.listbox.setAttribute("aria-label", "People found");
    this.listbox.hidden = true;
    this.input.setAttribute("role", "combobox");
    this.input.setAttribute("aria-autocomplete", "list");
    this.input.setAttribute("aria-expanded", "false");
    this.input.setAttribute("aria-controls", this.listbox.id);
    this.input.placeholder = "Name or email address";
    // Said once, before submitting: the addresses that cannot be right.
    this.problem = element("p", "form-errors chips-problem");
    this.problem.id = `${id}_problem`;
    this.problem.hidden = true;
    this.status = element("p", "visually-hidden");
    this.status.setAttribute("role", "status");
    const help = document.getElementById(`${id}_helptext`);
    if (help) {
      // The server's limit stays said ("(at most 200)"); only the way to type changes.
      const limit = help.textContent.match(/\(at most \d+\)/);
      help.textContent = `Type a name or an email address and press Enter; paste a list to add everyone in it${limit ? ` ${limit[0]}` : ""}.`;
    }
    const described = (this.textarea.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    this.input.setAttribute("aria-describedby", [...described, this.problem.id].join(" "));
    if (this.textarea.getAttribute("aria-invalid") === "true") this.input.setAttribute("aria-invalid", "true");
    const label = field.querySelector(`label[for="${id}"]`);
    if (label) label.htmlFor = this.input.id;

    const row = element("li", "chips-entry");
    row.append(this.input);
    this.list.append(row);
    this.box.append(this.list, this.listbox);
    this.textarea.hidden = true;
    this.textarea.after(this.box, this.problem, this.status);

    this.box.addEventListener("click", (event) => {
      if (event.target === this.box || event.target === this.list) this.input.focus();
    });
    this.input.addEventListener("keydown", (event) => this.onKeyDown(event));
    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("paste", (event) => this.onPaste(event));
    this.input.addEventListener("blur", () => this.onBlur());
    // mousedown would move the focus out of the box (and close the list) before the click.
    this.listbox.addEventListener("mousedown", (event) => event.preventDefault());
    this.listbox.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.pick(Number(option.dataset.index));
    });
    this.form.addEventListener("submit", (event) => this.onSubmit(event));
  }

  // --- chips -------------------------------------------------------------------------------

  add(rawEmail, name = "", { quiet = false } = {}) {
    const email = rawEmail.trim().replace(/^<|>$/g, "");
    if (!email) return;
    const key = email.toLowerCase();
    if (this.chips.some((chip) => chip.email.toLowerCase() === key)) {
      if (!quiet) this.say(`${email} is already invited.`);
      return;
    }
    const chip = {
      email,
      name: name || this.knownNames.get(key) || "",
      valid: looksLikeEmail(email),
    };
    this.chips.push(chip);
    this.list.insertBefore(this.renderChip(chip), this.list.lastElementChild);
    if (!quiet) this.say(chip.valid ? `Added ${chip.name || email}.` : `${email} is not a valid email address.`);
  }

  renderChip(chip) {
    const item = element("li", chip.valid ? "chip invitee-chip" : "chip invitee-chip chip-invalid");
    item.title = chip.valid ? chip.email : `${chip.email}: not a valid email address`;
    item.dataset.email = chip.email;
    item.append(element("span", "chip-name", chip.name || chip.email));
    if (!chip.valid) item.append(element("span", "visually-hidden", " (not a valid email address)"));
    const remove = element("button", "chip-remove");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${chip.email}`);
    const cross = element("span", "", "×");
    cross.setAttribute("aria-hidden", "true");
    remove.append(cross);
    remove.addEventListener("click", () => {
      this.remove(chip);
      this.input.focus();
    });
    item.append(remove);
    chip.element = item;
    return item;
  }

  remove(chip) {
    this.chips = this.chips.filter((other) => other !== chip);
    chip.element.remove();
    this.say(`Removed ${chip.email}.`);
    this.sync();
  }

  /** The text typed so far becomes chips (one per address in it). */
  commitTyped() {
    const text = this.input.value;
    if (!text.trim()) return false;
    for (const { email, name } of parseAddresses(text)) this.add(email, name);
    this.input.value = "";
    this.closeList();
    this.sync();
    return true;
  }

  /** Writes the chips (and any text not yet a chip) into the submitted box, and says which
   * addresses cannot be right. */
  sync() {
    const pending = this.input.value.trim();
    this.textarea.value = [...this.chips.map((chip) => chip.email), ...(pending ? [pending] : [])].join("\n");
    const invalid = this.chips.filter((chip) => !chip.valid).map((chip) => chip.email);
    this.problem.hidden = invalid.length === 0;
    this.problem.textContent = invalid.length
      ? `Not a valid email address: ${invalid.join(", ")}. Correct or remove ${invalid.length === 1 ? "it" : "them"} before sending.`
      : "";
    const serverSaidInvalid = this.textarea.getAttribute("aria-invalid") === "true" && !this.edited;
    if (invalid.length || serverSaidInvalid) this.input.setAttribute("aria-invalid", "true");
    else this.input.removeAttribute("aria-invalid");
  }

  // --- keys and typing ---------------------------------------------------------------------

  onKeyDown(event) {
    const open = !this.listbox.hidden && this.options.length > 0;
    switch (event.key) {
      case "ArrowDown":
      case "ArrowUp":
        if (!this.options.length) return;
        event.preventDefault();
        if (!open) this.openList();
        this.move(event.key === "ArrowDown" ? 1 : -1);
        return;
      case "Enter":
        if (open && this.activeIndex >= 0) {
          event.preventDefault();
          this.pick(this.activeIndex);
        } else if (this.input.value.trim()) {
          event.preventDefault(); // a chip, not the form sent half typed
          this.commitTyped();
        }
        return;
      case "Tab":
        if (open && this.activeIndex >= 0) {
          event.preventDefault();
          this.pick(this.activeIndex);
        } else if (this.input.value.trim()) {
          // The chip is made and the focus stays for the next person; Tab again moves on.
          event.preventDefault();
          this.commitTyped();
        }
        return;
      case ",":
      case ";":
        event.preventDefault();
        this.commitTyped();
        return;
      case "Escape":
        if (open) {
          event.preventDefault();
          this.closeList();
        }
        return;
      case "Backspace":
        if (this.input.value === "" && this.chips.length) {
          event.preventDefault();
          this.edited = true;
          this.remove(this.chips[this.chips.length - 1]);
        }
        return;
      default:
    }
  }

  onInput() {
    this.edited = true;
    // A comma typed where keydown does not name the key (Android keyboards say "Unidentified"):
    // what comes before it becomes chips, the rest stays typed.
    const lastSeparator = Math.max(this.input.value.lastIndexOf(","), this.input.value.lastIndexOf(";"));
    if (lastSeparator >= 0) {
      const rest = this.input.value.slice(lastSeparator + 1);
      this.input.value = this.input.value.slice(0, lastSeparator);
      this.commitTyped();
      this.input.value = rest.trimStart();
    }
    this.sync();
    clearTimeout(this.timer);
    const query = this.input.value.trim();
    if (query.length < MIN_QUERY_LENGTH) {
      this.latestRequest += 1; // a reply still on its way is for text no longer there
      this.closeList();
      return;
    }
    this.timer = setTimeout(() => this.search(query), DEBOUNCE_MS);
  }

  onPaste(event) {
    const text = event.clipboardData?.getData("text") || "";
    if (!text.includes("@")) return; // a name, pasted to search for: as typed
    event.preventDefault();
    this.edited = true;
    this.input.value = `${this.input.value} ${text}`.trim();
    this.commitTyped();
  }

  onBlur() {
    this.closeList();
    // An address left typed counts (as in Calendar), but half a name stays text to finish.
    if (this.input.value.includes("@")) this.commitTyped();
  }

  onSubmit(event) {
    this.commitTyped();
    if (this.chips.some((chip) => !chip.valid)) {
      event.preventDefault();
      this.problem.setAttribute("role", "alert");
      this.input.focus();
    }
  }

  // --- completion --------------------------------------------------------------------------

  async search(query) {
    const request = ++this.latestRequest;
    // How many searches are on their way (data-searches on the box): what a test waits on.
    this.inFlight = (this.inFlight || 0) + 1;
    this.box.dataset.searches = String(this.inFlight);
    let people;
    try {
      const url = new URL(this.peopleUrl, window.location.href);
      url.searchParams.set("q", query);
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      people = await response.json();
    } catch {
      people = []; // no completion then; typing an address still works
    } finally {
      this.inFlight -= 1;
      this.box.dataset.searches = String(this.inFlight);
    }
    if (request !== this.latestRequest) return; // an older reply, overtaken
    for (const person of people) this.knownNames.set(person.email.toLowerCase(), person.name);
    const invited = new Set(this.chips.map((chip) => chip.email.toLowerCase()));
    this.showOptions(people.filter((person) => !invited.has(person.email.toLowerCase())));
  }

  showOptions(people) {
    this.options = people;
    this.activeIndex = -1;
    this.listbox.replaceChildren(
      ...people.map((person, index) => {
        const option = element("li", "chips-option");
        option.id = `${this.listbox.id}-${index}`;
        option.dataset.index = String(index);
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.append(element("span", "chips-option-name", person.name), element("span", "chips-option-email", person.email));
        return option;
      }),
    );
    if (people.length) {
      this.openList();
      this.say(`${people.length} ${people.length === 1 ? "person" : "people"} found; use the arrow keys to choose.`);
    } else {
      this.closeList();
    }
  }

  openList() {
    this.listbox.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  }

  closeList() {
    this.listbox.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.activeIndex = -1;
  }

  move(step) {
    const count = this.options.length;
    this.activeIndex = this.activeIndex < 0 && step < 0 ? count - 1 : (this.activeIndex + step + count) % count;
    for (const option of this.listbox.children) {
      const active = Number(option.dataset.index) === this.activeIndex;
      option.setAttribute("aria-selected", String(active));
      option.classList.toggle("is-active", active);
      if (active) {
        this.input.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      }
    }
  }

  pick(index) {
    const person = this.options[index];
    if (!person) return;
    this.edited = true;
    this.input.value = "";
    this.add(person.email, person.name);
    this.closeList();
    this.sync();
    this.input.focus();
  }

  say(text) {
    this.status.textContent = text;
  }
}

for (const textarea of document.querySelectorAll("textarea[data-invitee-chips]")) {
  const peopleUrl = textarea.form?.dataset.peopleUrl;
  if (peopleUrl) new InviteeChips(textarea, peopleUrl);
}
