// Raised hands (hands.js), reactions (reactions.js) and polls (polls.js), put together for the call page: they
// get the call's elements and what they need of the call (its signaling, our peer id, the
// names it shows, its toast), and main.js hands them the join response, every notification
// and the end of the call.

import { HandsUi } from "./hands.js";
import { PollsUi } from "./polls.js";
import { ReactionsUi } from "./reactions.js";

const $ = (selector, root) => root.querySelector(selector);

export class Together {
  constructor(call) {
    const root = call.root;
    const request = (method, data) => (
      call.signaling ? call.signaling.request(method, data) : Promise.reject(new Error("You are not connected."))
    );
    const selfId = () => call.peerId;
    // As the call shows them: a guest's name with its mark.
    const nameOf = (peerId) => {
      if (peerId === call.peerId) return call.displayName || "You";
      const peer = call.peers.get(peerId);
      if (!peer) return "Someone";
      return peer.isGuest ? `${peer.displayName} (guest)` : peer.displayName;
    };
    const toast = (text) => call.toast(text);
    const grid = $("#tile-grid", root);
    this.hands = new HandsUi({
      root,
      button: $("#raise-hand-button", root),
      section: $("#hands-section", root),
      list: $("#hands-list", root),
      lowerAllButton: $("#lower-all-hands", root),
      grid,
      announcer: $("#call-announcer", root),
      request, selfId, nameOf, toast,
    });
    this.reactions = new ReactionsUi({
      button: $("#reactions-button", root),
      picker: $("#reaction-picker", root),
      layer: $("#reaction-layer", root),
      grid,
      hostSwitch: $("#reactions-switch", root),
      request, selfId, nameOf, toast,
    });
    const announcer = $("#call-announcer", root);
    this.polls = new PollsUi({
      form: $("#poll-form", root),
      question: $("#poll-question", root),
      optionsBox: $("#poll-form-options", root),
      addOption: $("#poll-add-option", root),
      anonymous: $("#poll-anonymous", root),
      error: $("#poll-error", root),
      empty: $("#poll-empty", root),
      list: $("#poll-list", root),
      badge: $("#polls-unseen", root),
      request, toast,
      announce: (text) => { announcer.textContent = text; },
    });
  }

  applyJoin(data) {
    this.hands.applyJoin(data);
    this.reactions.applyJoin(data);
    this.polls.applyJoin(data);
  }

  onNotification(method, data) {
    this.hands.onNotification(method, data || {});
    this.reactions.onNotification(method, data || {});
    this.polls.onNotification(method, data || {});
  }

  clear() {
    this.hands.clear();
    this.reactions.clear();
    this.polls.clear();
  }
}
