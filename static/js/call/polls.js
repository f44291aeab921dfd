// Polls (docs/protocol.md, "Polls"): the Polls side panel. Hosts and co-hosts start a poll and
// watch its results live, then close it; everyone else votes (one choice, which they may
// change while the poll is open) and sees the results once it is closed. The server decides
// who sees what: a participant's client is never sent the counts of an open poll, nor anyone
// the voters of an anonymous one. Everything people typed goes into the page as text
// (textContent), never as HTML.

const MIN_OPTIONS = 2;
const MAX_OPTIONS = 10;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function votesLabel(count) {
  return count === 1 ? "1 vote" : `${count} votes`;
}

export class PollsUi {
  // request(method, data) -> Promise; toast(text): a visible notice; announce(text): for
  // screen readers.
  constructor({ form, question, optionsBox, addOption, anonymous, error, empty, list, badge, request, toast, announce }) {
    this.form = form;
    this.question = question;
    this.optionsBox = optionsBox;
    this.addOptionButton = addOption;
    this.anonymous = anonymous;
    this.error = error;
    this.empty = empty;
    this.list = list;
    this.badge = badge;
    this.request = request;
    this.toast = toast || (() => {});
    this.announce = announce || (() => {});
    this.polls = new Map(); // pollId -> the poll as the server last described it to us
    this.moderator = false;
    this.active = false;
    this.panelOpen = false;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._create();
    });
    this.addOptionButton.addEventListener("click", () => {
      const input = this._addOptionField("");
      input.focus();
    });
    this._resetForm();
  }

  applyJoin(data) {
    this.active = true;
    this.moderator = data.canModerate === true;
    this.form.hidden = !this.moderator;
    this.empty.textContent = this.moderator ? "No polls yet." : "No polls yet. The host or a co-host can start one.";
    // A (re)join: the server's list replaces ours, which may have missed changes meanwhile.
    this.request("getPolls").then((result) => {
      this.polls.clear();
      for (const poll of (result && result.polls) || []) this.polls.set(poll.pollId, poll);
      this._renderAll();
    }).catch(() => {});
  }

  setOpen(open) {
    this.panelOpen = open;
    if (open) this.badge.hidden = true;
  }

  onNotification(method, data) {
    const poll = data.poll;
    if (!poll || typeof poll.pollId !== "number") return;
    if (method === "pollCreated") {
      if (this.polls.has(poll.pollId)) return; // our own, already shown from the response
      this.polls.set(poll.pollId, { ...poll, myVote: null });
      this._render(poll.pollId);
      if (!this.moderator) {
        this._notice(`New poll: ${poll.question}`);
      }
    } else if (method === "pollResults" || method === "pollClosed") {
      const known = this.polls.get(poll.pollId);
      // Two processes' notifications may arrive in either order: the newest results win.
      if (known && known.revision > poll.revision) return;
      const merged = { ...known, ...poll, myVote: known ? known.myVote : null };
      // pollClosed names no voters (it goes to everyone): a moderator keeps those of the last
      // pollResults, which are final (no vote lands after the close).
      const knownVoters = known && known.results && known.results.voters;
      if (knownVoters && merged.results && !merged.results.voters) {
        merged.results = { ...merged.results, voters: knownVoters };
      }
      this.polls.set(poll.pollId, merged);
      this._render(poll.pollId);
      if (method === "pollClosed" && !this.moderator) {
        this._notice(`Poll closed: ${poll.question}. See the results in Polls.`);
      }
    }
  }

  clear() {
    this.active = false;
    this.polls.clear();
    this.list.replaceChildren();
    this.empty.hidden = false;
    this.badge.hidden = true;
  }

  _notice(text) {
    if (this.panelOpen) {
      this.announce(text);
    } else {
      this.badge.hidden = false;
      this.toast(text);
    }
  }

  // --- the form (moderators) ---------------------------------------------------------------
  _resetForm() {
    this.question.value = "";
    this.anonymous.checked = false;
    this.optionsBox.replaceChildren();
    for (let i = 0; i < MIN_OPTIONS; i += 1) this._addOptionField("");
    this.error.textContent = "";
  }

  _optionInputs() {
    return [...this.optionsBox.querySelectorAll("input")];
  }

  _addOptionField(value) {
    const count = this._optionInputs().length;
    const row = element("div", "poll-form-option");
    const input = element("input");
    input.type = "text";
    input.maxLength = 100;
    input.autocomplete = "off";
    input.value = value;
    const remove = element("button", "icon-button poll-remove-option", "×");
    remove.type = "button";
    remove.addEventListener("click", () => {
      row.remove();
      this._relabelOptions();
      const inputs = this._optionInputs();
      inputs[Math.min(count, inputs.length - 1)].focus();
    });
    row.append(input, remove);
    this.optionsBox.append(row);
    this._relabelOptions();
    return input;
  }

  // Each field is named by its place ("Option 3"); only options past the second can go.
  _relabelOptions() {
    const rows = [...this.optionsBox.children];
    rows.forEach((row, index) => {
      const input = row.querySelector("input");
      input.setAttribute("aria-label", `Option ${index + 1}`);
      input.placeholder = `Option ${index + 1}`;
      const remove = row.querySelector("button");
      remove.setAttribute("aria-label", `Remove option ${index + 1}`);
      remove.hidden = rows.length <= MIN_OPTIONS;
    });
    this.addOptionButton.hidden = rows.length >= MAX_OPTIONS;
  }

  async _create() {
    const question = this.question.value.trim();
    const options = this._optionInputs().map((input) => input.value.trim()).filter(Boolean);
    if (!question) {
      this._formError("Write a question.", this.question);
      return;
    }
    if (options.length < MIN_OPTIONS) {
      this._formError(`Write at least ${MIN_OPTIONS} options.`, this._optionInputs().find((i) => !i.value.trim()));
      return;
    }
    const submit = this.form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const result = await this.request("createPoll", { question, options, anonymous: this.anonymous.checked });
      this.polls.set(result.poll.pollId, { ...result.poll, myVote: null });
      this._render(result.poll.pollId);
      this._resetForm();
      this.announce("Poll started");
    } catch (error) {
      this._formError(error.message || "The poll could not be started.", this.question);
    } finally {
      submit.disabled = false;
    }
  }

  _formError(text, field) {
    this.error.textContent = text;
    if (field) field.focus();
  }

  // --- the list ----------------------------------------------------------------------------
  _renderAll() {
    this.list.replaceChildren();
    for (const pollId of this.polls.keys()) this._render(pollId);
  }

  // One poll's item, replaced in place (the newest first), keeping the focus where it was.
  _render(pollId) {
    const poll = this.polls.get(pollId);
    if (!poll) return;
    const old = [...this.list.children].find((li) => li.dataset.pollId === String(pollId));
    const focusKey = old && old.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    const item = this._item(poll);
    if (old) old.replaceWith(item);
    else this.list.prepend(item);
    if (focusKey) {
      const again = item.querySelector(`[data-focus-key="${focusKey}"]`);
      if (again) again.focus();
    }
    this.empty.hidden = this.polls.size > 0;
  }

  _item(poll) {
    const item = element("li", "poll");
    item.dataset.pollId = String(poll.pollId);
    const headingId = `poll-question-${poll.pollId}`;
    const heading = element("h3", "poll-question", poll.question);
    heading.id = headingId;
    const total = poll.results ? poll.results.total : null;
    const facts = [poll.open ? "Open" : "Closed", poll.anonymous ? "Anonymous" : "Named"];
    if (total !== null) facts.push(votesLabel(total));
    item.append(heading, element("p", "poll-meta muted", facts.join(" · ")));
    if (poll.results && (this.moderator || !poll.open)) {
      item.append(this._results(poll, headingId));
    }
    if (!this.moderator && poll.open) {
      item.append(this._voteForm(poll, headingId));
    }
    if (this.moderator && poll.open) {
      const close = element("button", "button button-secondary poll-close", "Close poll");
      close.type = "button";
      close.dataset.focusKey = "close";
      close.setAttribute("aria-describedby", headingId);
      close.addEventListener("click", () => this._close(poll.pollId, close));
      item.append(close);
    }
    return item;
  }

  _results(poll, headingId) {
    const list = element("ul", "poll-results");
    list.setAttribute("aria-labelledby", headingId);
    const { counts, total, voters } = poll.results;
    poll.options.forEach((text, index) => {
      const count = counts[index] || 0;
      const percent = total ? Math.round((100 * count) / total) : 0;
      const row = element("li", "poll-result");
      if (poll.myVote === index) row.classList.add("is-mine");
      const line = element("div", "poll-result-line");
      const label = element("span", "poll-option-text", text);
      if (poll.myVote === index) label.append(element("span", "poll-mine", " (your vote)"));
      line.append(label, element("span", "poll-count", `${votesLabel(count)} · ${percent}%`));
      const bar = element("div", "poll-bar");
      bar.setAttribute("aria-hidden", "true");
      const fill = element("span");
      fill.style.width = `${percent}%`;
      bar.append(fill);
      row.append(line, bar);
      if (Array.isArray(voters) && voters[index] && voters[index].length) {
        row.append(element("p", "poll-voters muted", voters[index].join(", ")));
      }
      list.append(row);
    });
    return list;
  }

  _voteForm(poll, headingId) {
    const form = element("form", "poll-vote");
    const group = element("div", "poll-choices");
    group.setAttribute("role", "radiogroup");
    group.setAttribute("aria-labelledby", headingId);
    poll.options.forEach((text, index) => {
      const label = element("label", "poll-choice");
      const radio = element("input");
      radio.type = "radio";
      radio.name = `poll-${poll.pollId}`;
      radio.value = String(index);
      radio.checked = poll.myVote === index;
      radio.dataset.focusKey = `choice-${index}`;
      label.append(radio, element("span", "", text));
      group.append(label);
    });
    const submit = element("button", "button button-primary", "Vote");
    submit.type = "submit";
    submit.dataset.focusKey = "vote";
    submit.setAttribute("aria-describedby", headingId);
    const status = element("p", "poll-status", poll.myVote === null || poll.myVote === undefined ? "" : "Thanks for voting");
    status.setAttribute("role", "status");
    form.append(group, submit, status);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = form.querySelector("input:checked");
      if (!chosen) {
        status.textContent = "Choose an option first.";
        return;
      }
      this._vote(poll.pollId, Number(chosen.value), status, submit);
    });
    return form;
  }

  async _vote(pollId, optionIndex, status, submit) {
    submit.disabled = true;
    try {
      await this.request("vote", { pollId, optionIndex });
      const poll = this.polls.get(pollId);
      if (poll) poll.myVote = optionIndex;
      status.textContent = "Thanks for voting";
    } catch (error) {
      status.textContent = error.message || "Your vote could not be sent.";
      if (error.code === "poll_closed") this._refresh();
    } finally {
      submit.disabled = false;
    }
  }

  async _close(pollId, button) {
    button.disabled = true;
    try {
      const result = await this.request("closePoll", { pollId });
      const known = this.polls.get(pollId);
      if (!known || known.revision <= result.poll.revision) {
        this.polls.set(pollId, { ...known, ...result.poll });
      }
      this._render(pollId);
      this.announce("Poll closed");
    } catch (error) {
      button.disabled = false;
      this.toast(error.message || "The poll could not be closed.");
    }
  }

  async _refresh() {
    try {
      const result = await this.request("getPolls");
      for (const poll of result.polls || []) this.polls.set(poll.pollId, poll);
      this._renderAll();
    } catch {
      // The next notification brings it.
    }
  }
}
