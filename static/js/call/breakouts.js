// Breakout rooms in the call (docs/protocol.md, "Breakout rooms"; the server's rooms.breakouts).
//
// Hosts and co-hosts get the "Breakout rooms" panel: name the rooms, assign people (a select per
// person, or "Assign at random"), an optional timer, move or ask, "Open rooms"; then, while they
// are open, "Join" any room, "Broadcast" to all of them and "Close breakout rooms". Everyone gets
// the banner: which room they are in, the hosts' broadcasts, an invitation to join ("ask"
// mode), the closing countdown and "Return to main room".
//
// Moving between rooms is the call's (main.js moveTo): this module only says where to.
// Everything people typed is put in with textContent.

const DEFAULT_ROOMS = 2;
const MAX_ROOMS = 50;
const MAX_NAME = 60;
// After the closing countdown, how long to wait for the server's moveTo before going back to
// the main room anyway (its timer runs in one web process, which may be gone).
const RETURN_GRACE_MS = 5000;

const make = (tag, className, text) => {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
};

export class BreakoutsUi {
  // elements: the panel's and the banner's (see templates/rooms/_call.html);
  // request(method, data): a signaling request; move(code, name): go to that room's call;
  // people(): [{peerId, name}] of the others in this room; toast(text).
  constructor({ elements, request, move, people, toast }) {
    this.el = elements;
    this.request = request;
    this.move = move;
    this.people = people;
    this.toast = toast;
    this.moderator = false;
    this.state = null; // the server's: {main, rooms, endsAt, closesAt, mode, current}
    this.closingTimer = 0;
    this.returnTimer = 0;
    this.invite = null;
    this._bind();
    this._setRoomCount(DEFAULT_ROOMS);
  }

  _bind() {
    const el = this.el;
    el.addRoom.addEventListener("click", () => {
      this._setRoomCount(this._names().length + 1);
      const inputs = el.names.querySelectorAll("input");
      inputs[inputs.length - 1].focus();
    });
    el.random.addEventListener("click", () => this._assignAtRandom());
    el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._open();
    });
    el.broadcastForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this._broadcast();
    });
    el.close.addEventListener("click", () => this._close());
    el.rooms.addEventListener("click", (event) => {
      const button = event.target.closest("[data-room-code]");
      if (button) this.move(button.dataset.roomCode, button.dataset.roomName);
    });
    el.returnButton.addEventListener("click", () => {
      if (this.state && this.state.main) this.move(this.state.main.code, this.state.main.name);
    });
    el.accept.addEventListener("click", () => {
      const invite = this.invite;
      if (!invite) return;
      this.invite = null;
      el.accept.hidden = true;
      this.move(invite.code, invite.name);
    });
  }

  // --- the call's life ------------------------------------------------------------------------
  setModerator(moderator) {
    this.moderator = moderator;
    this.el.button.hidden = !moderator;
  }

  applyJoin(data) {
    this._clearTimers();
    this.invite = null;
    this.el.accept.hidden = true;
    this.el.message.hidden = true;
    this._apply(data.breakouts || null);
    this.renderPeople();
  }

  onNotification(method, data) {
    switch (method) {
      case "breakoutsOpened":
        this._apply({ ...data, current: this.state ? this.state.current : null });
        if (!this.moderator) this._renderBanner();
        break;
      case "moveTo":
        this.move(data.code, data.name);
        break;
      case "breakoutInvite":
        this.invite = { code: data.code, name: data.name };
        this.el.accept.textContent = `Join ${data.name}`;
        this.el.accept.hidden = false;
        this._renderBanner(`You're invited to join ${data.name}.`);
        break;
      case "breakoutBroadcast":
        this.el.message.textContent = `${data.from}: ${data.text}`;
        this.el.message.hidden = false;
        // On the banner (a status region: screen readers hear it), until the next room.
        this.el.banner.hidden = false;
        break;
      case "breakoutsClosing":
        this._startClosing(data);
        break;
      default:
        break;
    }
  }

  clear() {
    this._clearTimers();
    this.state = null;
    this.invite = null;
    this.el.banner.hidden = true;
    this.el.accept.hidden = true;
    this.el.message.hidden = true;
  }

  // The people of this room changed: the assignment list follows (choices kept by peer id).
  renderPeople() {
    const el = this.el;
    const chosen = new Map(
      [...el.people.querySelectorAll("select")].map((select) => [select.dataset.peerId, select.value]),
    );
    el.people.replaceChildren();
    const names = this._names();
    for (const person of this.people()) {
      const item = make("li", "breakout-person");
      const id = `breakout-person-${person.peerId}`;
      const label = make("label", "breakout-person-name", person.name);
      label.htmlFor = id;
      const select = make("select");
      select.id = id;
      select.dataset.peerId = person.peerId;
      select.append(new Option("Main room", ""));
      names.forEach((name, index) => select.append(new Option(name || `Room ${index + 1}`, String(index))));
      const previous = chosen.get(person.peerId);
      if (previous !== undefined && [...select.options].some((o) => o.value === previous)) select.value = previous;
      item.append(label, select);
      el.people.append(item);
    }
    el.nobody.hidden = el.people.children.length > 0;
    this._renderLate();
  }

  // While rooms are open, a moderator in the main room puts whoever is still here (a late
  // joiner) in a room: assignBreakout, which sends them there.
  _renderLate() {
    const el = this.el;
    const rooms = (this.state && this.state.rooms) || [];
    const show = rooms.length > 0 && !(this.state && this.state.current);
    el.latePeople.replaceChildren();
    el.late.hidden = true;
    if (!show) return;
    for (const person of this.people()) {
      const item = make("li", "breakout-person");
      const id = `breakout-late-${person.peerId}`;
      const label = make("label", "breakout-person-name", person.name);
      label.htmlFor = id;
      const select = make("select");
      select.id = id;
      select.append(new Option("Main room", ""));
      for (const room of rooms) select.append(new Option(room.name, room.code));
      select.addEventListener("change", async () => {
        if (!select.value) return;
        el.liveError.textContent = "";
        try {
          const result = await this.request("assignBreakout", { peerId: person.peerId, code: select.value });
          this._apply({ ...result.breakouts, current: this.state ? this.state.current : null });
        } catch (error) {
          el.liveError.textContent = error.message || "That person could not be moved.";
          select.value = "";
        }
      });
      item.append(label, select);
      el.latePeople.append(item);
    }
    el.late.hidden = el.latePeople.children.length === 0;
  }

  // --- the set-up form ----------------------------------------------------------------------
  _names() {
    return [...this.el.names.querySelectorAll("input")].map((input) => input.value.trim());
  }

  _setRoomCount(count) {
    const el = this.el;
    const names = this._names();
    const wanted = Math.max(1, Math.min(MAX_ROOMS, count));
    el.names.replaceChildren();
    for (let index = 0; index < wanted; index += 1) {
      const item = make("li", "breakout-name");
      const input = make("input");
      input.type = "text";
      input.maxLength = MAX_NAME;
      input.required = true;
      input.value = names[index] || `Room ${index + 1}`;
      input.setAttribute("aria-label", `Name of room ${index + 1}`);
      input.addEventListener("input", () => this.renderPeople());
      item.append(input);
      if (wanted > 1) {
        const remove = make("button", "icon-button breakout-remove", "×");
        remove.type = "button";
        remove.setAttribute("aria-label", `Remove room ${index + 1}`);
        remove.addEventListener("click", () => {
          item.remove();
          this._setRoomCount(this._names().length);
        });
        item.append(remove);
      }
      el.names.append(item);
    }
    el.addRoom.hidden = wanted >= MAX_ROOMS;
    this.renderPeople();
  }

  _assignAtRandom() {
    const selects = [...this.el.people.querySelectorAll("select")];
    const rooms = this._names().length;
    // Shuffled, then dealt round the rooms: sizes differ by one at most.
    for (let i = selects.length - 1; i > 0; i -= 1) {
      const j = Math.floor(Math.random() * (i + 1));
      [selects[i], selects[j]] = [selects[j], selects[i]];
    }
    selects.forEach((select, index) => { select.value = String(index % rooms); });
  }

  async _open() {
    const el = this.el;
    el.error.textContent = "";
    const rooms = this._names();
    if (rooms.some((name) => !name)) {
      el.error.textContent = "Give every room a name.";
      return;
    }
    const assignments = {};
    for (const select of el.people.querySelectorAll("select")) {
      if (select.value !== "") assignments[select.dataset.peerId] = Number(select.value);
    }
    const minutes = Number(el.timer.value) || 0;
    try {
      const result = await this.request("openBreakouts", {
        rooms,
        assignments,
        timerSeconds: minutes > 0 ? Math.round(minutes * 60) : null,
        mode: el.mode.value,
      });
      this._apply({ ...result.breakouts, current: this.state ? this.state.current : null });
      this.toast(`${rooms.length === 1 ? "1 breakout room" : `${rooms.length} breakout rooms`} opened`);
    } catch (error) {
      el.error.textContent = error.message || "The rooms could not be opened.";
    }
  }

  // --- while open ---------------------------------------------------------------------------
  _apply(state) {
    this.state = state;
    const el = this.el;
    const open = Boolean(state && state.rooms && state.rooms.length);
    el.form.hidden = open;
    el.live.hidden = !open;
    el.rooms.replaceChildren();
    for (const room of (state && state.rooms) || []) {
      const item = make("li", "breakout-room");
      const text = make("div", "breakout-room-text");
      text.append(make("span", "breakout-room-name", room.name));
      const who = room.assigned && room.assigned.length ? room.assigned.join(", ") : "Nobody assigned";
      text.append(make("span", "muted breakout-room-people", who));
      item.append(text);
      const here = state.current && state.current.code === room.code;
      if (here) {
        item.append(make("span", "muted breakout-here", "You're here"));
      } else {
        const join = make("button", "button button-secondary", "Join");
        join.type = "button";
        join.dataset.roomCode = room.code;
        join.dataset.roomName = room.name;
        join.setAttribute("aria-label", `Join ${room.name}`);
        item.append(join);
      }
      el.rooms.append(item);
    }
    el.timerNote.hidden = !(open && state.endsAt);
    if (open && state.endsAt) {
      const ends = new Date(state.endsAt);
      el.timerNote.textContent = `Rooms close automatically at ${ends.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}.`;
    }
    this._renderBanner();
    this._renderLate();
    if (state && state.closesAt && state.current) {
      const seconds = Math.max(0, Math.round((new Date(state.closesAt) - Date.now()) / 1000));
      this._startClosing({ seconds, code: state.main.code, name: state.main.name });
    }
  }

  _renderBanner(extra) {
    const el = this.el;
    const current = this.state && this.state.current;
    let where = "";
    if (current) where = `You are in ${current.name}`;
    else if (extra) where = extra;
    el.where.textContent = where;
    el.where.hidden = !where;
    // A moderator may leave a room whenever they like; others once the rooms close.
    el.returnButton.hidden = !(current && (this.moderator || this.closingTimer));
    el.banner.hidden = !where && el.message.hidden && el.accept.hidden;
  }

  async _broadcast() {
    const el = this.el;
    const text = el.broadcastText.value.trim();
    el.liveError.textContent = "";
    if (!text) return;
    try {
      await this.request("broadcastToBreakouts", { text });
      el.broadcastText.value = "";
    } catch (error) {
      el.liveError.textContent = error.message || "The message could not be sent.";
    }
  }

  async _close() {
    this.el.liveError.textContent = "";
    try {
      await this.request("closeBreakouts", { seconds: 10 });
    } catch (error) {
      this.el.liveError.textContent = error.message || "The rooms could not be closed.";
    }
  }

  _startClosing({ seconds, code, name }) {
    this._clearTimers();
    const el = this.el;
    const inRoom = Boolean(this.state && this.state.current);
    let left = Math.max(0, Number(seconds) || 0);
    const tick = () => {
      if (inRoom) {
        el.where.textContent = `Breakout rooms close in ${left} s. You'll go back to the main room.`;
      } else {
        el.where.textContent = `Breakout rooms close in ${left} s.`;
      }
      el.where.hidden = false;
      el.banner.hidden = false;
      if (left <= 0) {
        clearInterval(this.closingTimer);
        this.closingTimer = 0;
        if (inRoom) {
          el.where.textContent = "Breakout rooms are closed.";
          el.returnButton.hidden = false;
          // The server moves us (moveTo); should that not come, go back anyway.
          this.returnTimer = setTimeout(() => this.move(code, name), RETURN_GRACE_MS);
        } else {
          el.banner.hidden = el.message.hidden;
        }
        return;
      }
      left -= 1;
    };
    this.closingTimer = setInterval(tick, 1000);
    tick();
    el.returnButton.hidden = !inRoom;
  }

  _clearTimers() {
    clearInterval(this.closingTimer);
    clearTimeout(this.returnTimer);
    this.closingTimer = 0;
    this.returnTimer = 0;
  }
}
