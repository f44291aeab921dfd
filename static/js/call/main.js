// Entry point of the call page (templates/rooms/_call.html, included by rooms/join.html):
// pre-join screen, joining, the call, recovery, leaving. Protocol: docs/protocol.md.
//
// Modules: signaling.js (requests/responses/notifications over the WebSocket, reconnect with
// backoff), media.js (send PC: we offer, ICE gathered first; receive PC: the SFU offers),
// devices.js (camera, microphone, level meter), tiles.js (grid, presentation, audio),
// chat.js, people.js (with a ⋮ menu per person), pin.js (pin someone to your own stage),
// layout.js + layout-dialog.js ("Change layout": Auto, Tiled, Spotlight, Sidebar, the tile limit;
// the host's spotlight for everyone, `spotlight` / `spotlightChanged`),
// quality.js (connection quality from getStats), chime.js (the lobby's
// sound), util.js.
//
// The lobby: a person the meeting sends to the lobby sees "Ask to join"; the join is answered
// "lobby" and the page shows "Asking to be let in…" with Cancel (cancelKnock) until the server
// says lobbyAdmitted (join again), lobbyDenied, lobbyTimedOut or meetingEnded. Hosts and
// co-hosts get a notice that stays while anyone waits ("Ana wants to join this call", Admit,
// View all), a chime, and a count on the People button.
//
// Recovery: a dropped WebSocket reconnects with backoff and joins again with the same peerId
// (the server keeps the participant for a grace period: no peerClosed/newPeer for others);
// the server answers `resumed: false`, so media is published afresh on new peer connections.
// Failed ICE: restartIce (the SFU replaces both transports), else leave + join. The media
// server died: the server moves us to a live one and says mediaReset; we publish again. Close codes
// and join refusals that retrying cannot fix end on a screen that says why (end-states.js: one
// screen per way out, "Rejoin" only where joining again can work).
//
// Performance marks for bench/join.py: meet:join-click, meet:ws-open, meet:joined,
// meet:first-answer, meet:published, meet:first-remote-frame (again after a reconnect), and
// meet:ws-lost when the signaling connection drops.

import { BreakoutsUi } from "./breakouts.js";
import { ChatPanel } from "./chat.js";
import { Chime } from "./chime.js";
import { LevelMeter, LocalDevices } from "./devices.js";
import { setUpFullScreen } from "./fullscreen.js";
import { LayoutDialog } from "./layout-dialog.js";
import {
  endActions, endStateForClose, endStateForMeetingEnded, endStateForRefusal,
} from "./end-states.js";
import { MediaSession } from "./media.js";
import { PeoplePanel } from "./people.js";
import { Pin } from "./pin.js";
import { QualityMonitor } from "./quality.js";
import { SignalingClient } from "./signaling.js";
import { TileGrid } from "./tiles.js";
import { Together } from "./together.js";
import { uuid } from "./util.js";
import { ViewReporter } from "./views.js";

const RECEIVE_RESOLUTION_KEY = "meet.receiveResolution";

const QUALITY_INTERVAL_MS = 2000;
// The self badge's reason while the SFU says our downlink holds our videos back.
const DOWNLINK_LIMITED_REASON = "Your connection is limiting the video you receive.";
// The end screens' words, from the server (rooms/end_states.py); the key stands in if missing.
const readEndScreens = () => {
  const script = document.getElementById("call-end-screens");
  try {
    return (script && JSON.parse(script.textContent)) || {};
  } catch {
    return {};
  }
};
const TOAST_MS = 4000;
const LEAVE_BEFORE_MOVING_MS = 10000;

const $ = (selector, root = document) => root.querySelector(selector);
// Signed-in people get our "Your name" field; guests type theirs in the join page's field.
// A guest's name is one they typed: shown with a mark, so nobody passes for an account holder.
const peerLabel = (peer) => (peer.isGuest ? `${peer.displayName} (guest)` : peer.displayName);
const nameField = (root) => $("#display-name", root) || document.getElementById("guest-name");
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
// A chat message arriving while the chat panel is closed pops up this briefly (a toast).
const CHAT_PREVIEW_CHARS = 80;
function chatPreview(message) {
  const text = String(message.text || "").replace(/\s+/g, " ").trim();
  const short = text.length > CHAT_PREVIEW_CHARS ? `${text.slice(0, CHAT_PREVIEW_CHARS - 1)}…` : text;
  return `${message.authorName || "Someone"}: ${short}`;
}

class Call {
  constructor(root) {
    this.root = root;
    const codeHolder = root.closest("[data-meeting-code]") || $("[data-meeting-code]");
    this.code = root.dataset.meetingCode || (codeHolder ? codeHolder.dataset.meetingCode : "");
    // The meeting this page is for; `code` is the room this call is in now (a breakout room's
    // while in one: moveTo).
    this.mainCode = this.code;
    this.wsUrl = this._wsUrlFor(this.code);
    this.moving = false;
    // One participant identity per tab: a reconnect resumes it (no duplicate tile).
    this.peerId = uuid();
    this.displayName = "";
    this.role = "participant";
    this.micOn = true;
    this.cameraOn = true;
    this.presenting = false;
    this.state = "prejoin"; // prejoin | joining | joined | ended
    this.peers = new Map(); // peerId -> {displayName, role, micPaused}
    this.orphanConsumers = new Map(); // consumerId -> consumer whose peer we do not know (yet)
    this.signaling = null;
    this.media = null;
    this.iceServers = [];
    this.simulcast = false;
    // Tells the SFU how each remote video is shown (its size picks the simulcast layer).
    this.views = new ViewReporter((consumerId, width, height) => (
      this.signaling ? this.signaling.request("setConsumerView", { consumerId, width, height }) : Promise.resolve()
    ));
    this.qualityTimer = 0;
    this.quality = new QualityMonitor();
    this.firstFrameMarked = false;
    this.readyCardShown = false;
    this.recovering = false;
    // The page this call sits in (rooms/join.html) and what the server said there.
    this.page = root.closest(".prejoin-page");
    this.endScreens = readEndScreens();
    this.mayStartNextCall = Boolean(this.page && this.page.dataset.mayStartNextCall === "true");
    this.endedByMe = false;

    this.devices = new LocalDevices();
    this.meter = new LevelMeter($("#mic-level", root));
    this.tiles = new TileGrid({
      grid: $("#tile-grid", root),
      presentation: $("#presentation", root),
      template: $("#call-tile-template", root),
      audioSink: $("#audio-sink", root),
    });
    this.pin = new Pin(this.tiles, { announce: (text) => this._announce(text) });
    // Over the tile limit the last tile is "N others": it opens People, where everyone is.
    this.tiles.onShowEveryone = () => {
      if ($("#people-panel", root).hidden) this._togglePanel("people-panel");
    };
    this.layoutDialog = new LayoutDialog({
      dialog: $("#layout-dialog", root),
      tiles: this.tiles,
      announce: (text) => this._announce(text),
    });
    this.people = new PeoplePanel({
      list: $("#people-list", root),
      countElements: $$("[data-people-count]", root),
      lobbySection: $("#lobby-section", root),
      lobbyList: $("#lobby-list", root),
      hostControls: $("#host-controls", root),
      onAction: (method, data) => this._onPersonAction(method, data),
      isPinned: (peerId) => this.pin.isPinned(peerId),
      isSpotlit: (peerId) => this.tiles.spotlightPeerId === peerId,
      onLobbyChange: (waiting, added) => this._onLobbyChange(waiting, added),
    });
    this.locked = false;
    this.guestsMayAsk = false;
    this.chime = new Chime();
    // Waiting in the lobby: resolves with the outcome (see _requestJoin).
    this._lobbyDecision = null;
    // Whether this person asks to join rather than joins (the server's decision, on the page;
    // a join answered "lobby" turns it on too).
    this.askToJoin = $("#join-button", root).dataset.ask === "true";
    this.chat = new ChatPanel({
      list: $("#chat-list", root), form: $("#chat-form", root),
      input: $("#chat-input", root), errorElement: $("#chat-error", root),
    });
    this.chat.addEventListener("unread", (event) => {
      if (!$("#chat-panel", root).hidden) return;
      $("#chat-unread", root).hidden = false;
      const message = event.detail && event.detail.message;
      if (message && !message.deleted) {
        this.toast(chatPreview(message), { messageId: message.id });
      }
    });
    // Raised hands and reactions (together.js).
    this.together = new Together(this);
    // Breakout rooms (breakouts.js): it says where to go, moveTo goes there.
    this.breakouts = new BreakoutsUi({
      elements: {
        button: $("#breakouts-button", root),
        form: $("#breakout-form", root),
        names: $("#breakout-names", root),
        addRoom: $("#breakout-add-room", root),
        random: $("#breakout-random", root),
        people: $("#breakout-people", root),
        nobody: $("#breakout-nobody", root),
        timer: $("#breakout-timer", root),
        mode: $("#breakout-mode", root),
        error: $("#breakout-error", root),
        live: $("#breakout-live", root),
        timerNote: $("#breakout-timer-note", root),
        rooms: $("#breakout-rooms", root),
        late: $("#breakout-late", root),
        latePeople: $("#breakout-late-people", root),
        broadcastForm: $("#breakout-broadcast", root),
        broadcastText: $("#breakout-broadcast-text", root),
        liveError: $("#breakout-live-error", root),
        close: $("#breakout-close", root),
        banner: $("#breakout-banner", root),
        where: $("#breakout-where", root),
        message: $("#breakout-message", root),
        accept: $("#breakout-accept", root),
        returnButton: $("#breakout-return", root),
      },
      request: (method, data) => (
        this.signaling ? this.signaling.request(method, data) : Promise.reject(new Error("You are not connected."))
      ),
      move: (code, name) => this.moveTo(code, name),
      people: () => [...this.peers.entries()].map(([peerId, peer]) => ({ peerId, name: peerLabel(peer) })),
      toast: (text) => this.toast(text),
    });
    this._bindUi();
  }

  _wsUrlFor(code) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}${this.root.dataset.wsPath}${encodeURIComponent(code)}/`;
  }

  // --- pre-join ----------------------------------------------------------------------------
  async start() {
    const nameInput = nameField(this.root);
    if (this.root.dataset.displayName) nameInput.value = this.root.dataset.displayName;
    $("#controls-meeting-code", this.root).textContent = this.code;
    this._status("Getting your camera and microphone ready…");
    await this.devices.open();
    this._showPreview();
    await this._fillDevicePickers();
    if (!this.devices.micTrack && !this.devices.cameraTrack) {
      this._status("No camera or microphone is available. You can still join and listen.");
    } else if (!this.devices.cameraTrack || !this.devices.micTrack) {
      this._status(this.devices.cameraTrack ? "No microphone found." : "No camera found.");
    } else {
      this._status("");
    }
    if (!this.devices.micTrack) this.micOn = false;
    if (!this.devices.cameraTrack) this.cameraOn = false;
    this._renderToggles();
    $("#join-button", this.root).disabled = false;
    navigator.mediaDevices.addEventListener("devicechange", () => this._fillDevicePickers());
  }

  _status(text) {
    $("#prejoin-status", this.root).textContent = text;
  }

  _showPreview() {
    const video = $("#preview-video", this.root);
    const track = this.cameraOn ? this.devices.cameraTrack : null;
    video.srcObject = track ? new MediaStream([track]) : null;
    $("#preview-camera-off", this.root).hidden = Boolean(track);
    this.meter.attach(this.devices.micTrack);
  }

  async _fillDevicePickers() {
    const { cameras, mics, speakers } = await this.devices.list();
    const fill = (select, devices, current, fallbackLabel) => {
      select.replaceChildren();
      devices.forEach((device, index) => {
        const option = document.createElement("option");
        option.value = device.deviceId;
        option.textContent = device.label || `${fallbackLabel} ${index + 1}`;
        option.selected = device.deviceId === current;
        select.append(option);
      });
      select.disabled = devices.length === 0;
    };
    fill($("#camera-select", this.root), cameras, this.devices.cameraDeviceId, "Camera");
    fill($("#mic-select", this.root), mics, this.devices.micDeviceId, "Microphone");
    fill($("#speaker-select", this.root), speakers, this.tiles.speakerDeviceId || "default", "Speaker");
    // Some browsers cannot route audio output: hide what cannot work.
    const canPickSpeaker = "setSinkId" in HTMLMediaElement.prototype && speakers.length > 0;
    $("#speaker-select", this.root).parentElement.hidden = !canPickSpeaker;
  }

  // "Receive resolution": a cap on every video this person receives, kept in this browser.
  _bindReceiveResolution(select) {
    let saved = "0";
    try {
      saved = localStorage.getItem(RECEIVE_RESOLUTION_KEY) || "0";
    } catch {
      // Storage refused (private mode): the default, for this visit.
    }
    if ([...select.options].some((option) => option.value === saved)) select.value = saved;
    this.views.setMaxHeight(Number(select.value));
    select.addEventListener("change", () => {
      this.views.setMaxHeight(Number(select.value));
      try {
        localStorage.setItem(RECEIVE_RESOLUTION_KEY, select.value);
      } catch {
        // Not kept: it still applies now.
      }
    });
  }

  _bindUi() {
    const root = this.root;
    setUpFullScreen($("#fullscreen-button", root), $("#in-call", root));
    root.addEventListener("click", (event) => {
      const button = event.target.closest("[data-action]");
      if (!button || !root.contains(button)) return;
      const action = button.dataset.action;
      if (action === "toggle-mic") this.toggleMic();
      else if (action === "toggle-camera") this.toggleCamera();
      else if (action === "toggle-present") this.togglePresent();
      else if (action === "leave") this.leave();
      else if (action === "toggle-chat") this._togglePanel("chat-panel");
      else if (action === "toggle-people") this._togglePanel("people-panel");
      else if (action === "toggle-polls") this._togglePanel("polls-panel");
      else if (action === "toggle-breakouts") this._togglePanel("breakouts-panel");
      else if (action === "toggle-settings") this._togglePanel("settings-panel");
      else if (action === "toggle-details") this._togglePanel("details-panel");
      else if (action === "open-layout") this.layoutDialog.open(button);
      else if (action === "close-layout") this.layoutDialog.close();
      else if (action === "copy-link") this._copyJoinLink(button);
      else if (action === "close-ready") $("#ready-card", root).hidden = true;
      else if (action === "close-panel") this._togglePanel(null);
      else if (action === "rejoin" || action === "ask-again") this.rejoin();
      else if (action === "cancel-knock") this._cancelKnock();
      else if (action === "view-lobby") this._viewLobby();
      else if (action === "notice-admit") this._admitFromNotice();
      else if (action === "toggle-lock") this._moderate("lockMeeting", { locked: !this.locked });
      else if (action === "end-meeting") this._moderate("endMeeting", {});
    });
    $("#join-button", root).addEventListener("click", () => this.join());
    $("#guest-access-switch", root).addEventListener("change", (event) => (
      this._moderate("setGuestAccess", { allowed: event.target.checked })
    ));
    nameField(root).addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !$("#join-button", root).disabled) this.join();
    });
    $("#camera-select", root).addEventListener("change", (event) => this._switchCamera(event.target.value));
    $("#mic-select", root).addEventListener("change", (event) => this._switchMic(event.target.value));
    $("#speaker-select", root).addEventListener("change", (event) => this.tiles.setSpeaker(event.target.value));
    this._bindReceiveResolution($("#receive-resolution", root));
    document.addEventListener("keydown", (event) => {
      // An open dialog ("Change layout") closes itself on Escape; the panel under it stays.
      if (event.key === "Escape" && $("#layout-dialog", root).open) return;
      if (event.key === "Escape" && this._closeOpenPanel()) {
        event.preventDefault();
        return;
      }
      if (!(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey) return;
      const key = event.key.toLowerCase();
      if (key === "d") {
        event.preventDefault();
        this.toggleMic();
      } else if (key === "e") {
        event.preventDefault();
        this.toggleCamera();
      }
    });
    window.addEventListener("pagehide", () => {
      // Closing the tab: say goodbye so others see us leave now, not after a timeout.
      if (this.state === "joined" && this.signaling) {
        this.signaling.request("leave").catch(() => {});
      }
    });
  }

  // Escape closes the side panel that is open (as Meet's do) and gives the focus back to the
  // button that opened it. Returns whether one was open.
  _closeOpenPanel() {
    const open = $$(".side-panel", this.root).find((panel) => !panel.hidden);
    if (!open) return false;
    this._togglePanel(null);
    const button = $(`[data-panel="${open.id}"]`, this.root);
    if (button) button.focus();
    return true;
  }

  // While the call fills the window, what the page has outside it (the site header with
  // "Sign out", messages) is hidden under it: make it inert, so Tab never reaches it.
  _setOutsideInert(inert) {
    for (let node = this.root; node && node !== document.body; node = node.parentElement) {
      for (const sibling of node.parentElement ? node.parentElement.children : []) {
        if (sibling !== node && sibling.tagName !== "SCRIPT") sibling.inert = inert;
      }
    }
  }

  _togglePanel(panelId) {
    for (const panel of $$(".side-panel", this.root)) {
      const show = panel.id === panelId && panel.hidden;
      panel.hidden = !show;
      const button = $(`[data-panel="${panel.id}"]`, this.root);
      if (button) button.setAttribute("aria-expanded", String(show));
      if (panel.id === "polls-panel") this.together.polls.setOpen(show);
      if (show && panel.id === "chat-panel") {
        $("#chat-unread", this.root).hidden = true;
        $("#chat-input", this.root).focus();
      }
    }
    this._renderLobbyNotice();
    this.tiles.layout();
  }

  // --- microphone / camera ----------------------------------------------------------------
  _renderToggles() {
    for (const button of $$('[data-action="toggle-mic"]', this.root)) {
      button.setAttribute("aria-label", this.micOn ? "Turn off microphone" : "Turn on microphone");
      button.setAttribute("aria-pressed", String(!this.micOn));
      button.classList.toggle("is-off", !this.micOn);
    }
    for (const button of $$('[data-action="toggle-camera"]', this.root)) {
      button.setAttribute("aria-label", this.cameraOn ? "Turn off camera" : "Turn on camera");
      button.setAttribute("aria-pressed", String(!this.cameraOn));
      button.classList.toggle("is-off", !this.cameraOn);
    }
    // Browsers that cannot share a screen (phones) get no "Present now".
    const canPresent = Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
    for (const button of $$('[data-action="toggle-present"]', this.root)) {
      if (button.closest(".presenting-notice")) continue;
      button.hidden = !canPresent;
      button.setAttribute("aria-label", this.presenting ? "Stop presenting" : "Present now");
      button.title = this.presenting ? "Stop presenting" : "Present now";
      button.setAttribute("aria-pressed", String(this.presenting));
      button.classList.toggle("is-active", this.presenting);
    }
    this.tiles.setMicMuted(this.peerId, !this.micOn);
    this.people.setMicMuted(this.peerId, !this.micOn);
  }

  async toggleMic() {
    if (this.state === "ended") return;
    if (!this.devices.micTrack) {
      this.toast("No microphone is available.");
      return;
    }
    this.micOn = !this.micOn;
    this.devices.micTrack.enabled = this.micOn;
    this._renderToggles();
    if (this.media) {
      try {
        await this.media.setPaused("mic", !this.micOn);
      } catch (error) {
        console.warn("mic toggle", error);
      }
    }
  }

  async toggleCamera() {
    if (this.state === "ended" || this._cameraBusy) return;
    this._cameraBusy = true;
    try {
      if (this.cameraOn) {
        this.cameraOn = false;
        this._renderToggles();
        if (this.media) {
          await this.media.setPaused("camera", true).catch((error) => console.warn(error));
          await this.media.replaceTrack("camera", null);
        }
        this.devices.stopCamera();
      } else {
        const track = await this.devices.reopenCamera();
        if (!track) {
          this.toast("The camera could not be started.");
          return;
        }
        this.cameraOn = true;
        this._renderToggles();
        if (this.media) {
          await this.media.replaceTrack("camera", track);
          await this.media.setPaused("camera", false).catch((error) => console.warn(error));
        }
      }
      this._showLocalVideo();
    } finally {
      this._cameraBusy = false;
    }
  }

  _showLocalVideo() {
    if (this.state === "prejoin" || this.state === "joining") {
      this._showPreview();
      return;
    }
    const track = this.cameraOn ? this.devices.cameraTrack : null;
    this.tiles.setVideo(this.peerId, track);
    this.tiles.setCameraOff(this.peerId, !track);
  }

  async _switchCamera(deviceId) {
    if (!this.cameraOn) {
      this.devices.cameraDeviceId = deviceId;
      return;
    }
    const track = await this.devices.switchCamera(deviceId);
    if (track && this.media) await this.media.replaceTrack("camera", track);
    this._showLocalVideo();
  }

  async _switchMic(deviceId) {
    const track = await this.devices.switchMic(deviceId);
    if (track && this.media) await this.media.replaceTrack("mic", track);
    if (this.state === "prejoin") this.meter.attach(this.devices.micTrack);
  }

  // --- joining ------------------------------------------------------------------------------
  async join() {
    if (this.state !== "prejoin") return;
    performance.mark("meet:join-click");
    const nameInput = nameField(this.root);
    const name = nameInput.value.trim();
    if (!name) {
      this._status("Enter your name to join.");
      nameInput.focus();
      return;
    }
    this.displayName = name;
    this.state = "joining";
    this.chime.prepare(); // in the click: a host's lobby chime may sound later
    $("#join-button", this.root).disabled = true;
    this._status(this.askToJoin ? "" : "Joining…");
    this._newSignaling();
    let data;
    try {
      await this.signaling.connect();
      performance.mark("meet:ws-open");
      data = await this._requestJoin();
      performance.mark("meet:joined");
    } catch (error) {
      console.error("join failed", error);
      if (this.state === "ended") return;
      const refusal = endStateForRefusal(error.code);
      if (refusal) {
        this._end(refusal);
        return;
      }
      this.signaling.close();
      this.signaling = null;
      this.state = "prejoin";
      this._leaveCallUi();
      $("#join-button", this.root).disabled = false;
      // Cancelled while asking to be let in: back to the pre-join as it was.
      this._status(error.code === "knock_cancelled" ? "" : `Could not join: ${error.message || error}`);
      return;
    }
    // In the call from here on: a failure now (say the socket drops while we publish) is for
    // the recovery paths, not a reason to go back to the pre-join screen.
    this._applyJoin(data);
    this._enterCall();
    const media = this._startMedia().then(() => performance.mark("meet:published"));
    await this.chat.loadHistory((data.chat && data.chat.messages) || []);
    try {
      await media;
    } catch (error) {
      console.warn("publishing failed", error);
      // Disconnected: the reconnect publishes again. Connected: the server refused it.
      if (this.signaling && this.signaling.connected) this.toast("Your camera and microphone could not be sent.");
    }
  }

  // The socket to the room `this.wsUrl` names, its events wired to this call.
  _newSignaling() {
    const signaling = new SignalingClient(this.wsUrl);
    this.signaling = signaling;
    signaling.onRequest = (method, data) => this._onServerRequest(method, data);
    // A room left for another (moveTo) says nothing more to this call.
    const current = () => signaling === this.signaling;
    signaling.addEventListener("notification", (event) => {
      if (current()) this._onNotification(event.detail);
    });
    signaling.addEventListener("open", (event) => {
      if (!event.detail.reconnected || !current()) return;
      if (this._lobbyDecision) this._knockAgain();
      else this._onReconnected();
    });
    signaling.addEventListener("disconnected", () => {
      if (this.state !== "joined") return;
      performance.mark("meet:ws-lost");
      this._banner("Reconnecting…");
    });
    signaling.addEventListener("failed", (event) => {
      if (current()) this._end(endStateForClose(event.detail.code));
    });
    this.chat.setSignaling(signaling);
    this.chat.setPeerId(this.peerId); // its messages come back with this authorPeerId
  }

  // Breakout rooms: leave this room's call (signaling and media) and join the room with `code`
  // on a new socket, with the same tab identity, devices and toggles; no page load. Each room
  // is its own call on the server: its people, its media, its chat.
  async moveTo(code, name) {
    if (this.moving) {
      // Sent on again while on the way (say, the main room's join says "your room is ..."):
      // go there once this move is done.
      this.pendingMove = { code, name };
      return;
    }
    if (this.state !== "joined" || !code || code === this.code) return;
    this.moving = true;
    this.pendingMove = null;
    this._banner(`Moving to ${name || "another room"}…`);
    const previous = this.signaling;
    try {
      // Long enough to wait behind a slow request on this socket: without its leave the
      // others keep our tile for the reconnect grace period.
      await previous.request("leave", {}, { timeoutMs: LEAVE_BEFORE_MOVING_MS });
    } catch (error) {
      console.warn("leave before moving", error);
    }
    previous.close();
    this._closeMedia();
    this.firstFrameMarked = false;
    for (const peerId of [...this.peers.keys()]) this._removePeer(peerId);
    this.tiles.setActiveSpeaker(null);
    this.together.clear();
    this.chat.reset();
    this.code = code;
    this.wsUrl = this._wsUrlFor(code);
    this._newSignaling();
    try {
      await this.signaling.connect();
      const data = await this.signaling.request("join", { peerId: this.peerId, displayName: this.displayName });
      this._applyJoin(data);
      this._banner("");
      this._announce(code === this.mainCode ? "You are back in the main room" : `You are in ${name}`);
      const media = this._startMedia();
      await this.chat.loadHistory((data.chat && data.chat.messages) || []);
      await media;
    } catch (error) {
      console.error("moving failed", error);
      const refusal = endStateForRefusal(error.code);
      if (refusal) this._end(refusal);
      else if (this.state === "joined") this.toast(`Could not join ${name || "the room"}: ${error.message || error}`);
      this._banner("");
    } finally {
      this.moving = false;
    }
    const next = this.pendingMove;
    this.pendingMove = null;
    if (next) await this.moveTo(next.code, next.name);
  }

  // join; when the meeting has a lobby, knock and wait on this connection ("Asking to be let
  // in…", with Cancel) until a host lets us in (lobbyAdmitted: join again) or not
  // (lobbyDenied), nobody answers in time (lobbyTimedOut), the meeting ends (meetingEnded),
  // or the person cancels (cancelKnock).
  async _requestJoin() {
    const join = () => this.signaling.request("join", { peerId: this.peerId, displayName: this.displayName });
    try {
      return await join();
    } catch (error) {
      if (error.code !== "lobby") throw error;
    }
    this._showWaiting(true);
    let outcome;
    try {
      outcome = await new Promise((resolve) => { this._lobbyDecision = resolve; });
    } finally {
      this._lobbyDecision = null;
      this._showWaiting(false);
    }
    if (outcome && outcome.joined) return outcome.joined; // asked again after a reconnect: in
    if (outcome === "admitted") return join();
    if (outcome === "denied") this._end("denied");
    else if (outcome === "timeout") this._end("lobby_timeout");
    const error = new Error(outcome === "cancelled" ? "Cancelled" : "Not let in");
    error.code = outcome === "cancelled" ? "knock_cancelled" : "not_admitted";
    throw error;
  }

  // "Asking to be let in…" with a spinner and Cancel in place of the join button, or back.
  _showWaiting(waiting) {
    const joinButton = $("#join-button", this.root);
    const wait = $("#lobby-wait", this.root);
    if (waiting) {
      this.askToJoin = true;
      joinButton.textContent = "Ask to join";
      this._status("");
    }
    const hadFocus = waiting ? joinButton === document.activeElement : wait.contains(document.activeElement);
    joinButton.hidden = waiting;
    wait.hidden = !waiting;
    const name = document.getElementById("guest-name");
    if (name) name.readOnly = waiting;
    if (hadFocus) (waiting ? $('[data-action="cancel-knock"]', wait) : joinButton).focus();
  }

  // "Cancel" while asking to be let in: the server withdraws the knock (the hosts' notice goes),
  // and the page is back to its pre-join.
  async _cancelKnock() {
    if (!this._lobbyDecision || !this.signaling) return;
    try {
      await this.signaling.request("cancelKnock", {}, { timeoutMs: 3000 });
    } catch (error) {
      // Already answered meanwhile (the answer is on its way), or the socket is gone (which
      // withdraws the knock too).
      console.warn("cancelKnock", error);
    }
    if (this._lobbyDecision) this._lobbyDecision("cancelled");
  }

  // The socket came back while asking to be let in: the server withdrew the knock when the old
  // socket went, so ask again (the hosts see it again).
  async _knockAgain() {
    try {
      const data = await this.signaling.request("join", { peerId: this.peerId, displayName: this.displayName });
      if (this._lobbyDecision) this._lobbyDecision({ joined: data });
    } catch (error) {
      if (error.code === "lobby") return;
      const refusal = endStateForRefusal(error.code);
      if (refusal) this._end(refusal);
    }
  }

  _applyJoin(data) {
    this.role = data.role || "participant";
    // The server names us: a signed-in person goes by their account's name.
    if (typeof data.displayName === "string" && data.displayName) this.displayName = data.displayName;
    // The server decides (staff moderate without a moderator role): the role alone can't tell.
    const moderator = data.canModerate === true;
    this.people.setModerator(moderator, this.role);
    this.chat.setModerator(moderator);
    this.breakouts.setModerator(moderator);
    const meeting = data.meeting || {};
    this._setLocked(Boolean(meeting.locked));
    this._setGuestAccess(Boolean(meeting.guestsMayAsk));
    // A meeting for invited people only keeps to them: no switch (rooms.moderation).
    $("#guest-access-row", this.root).hidden = meeting.accessPolicy === "invitees";
    $("#guest-access-help", this.root).hidden = meeting.accessPolicy === "invitees";
    if (this.people.moderator) this._loadLobby();
    this.iceServers = Array.isArray(data.iceServers) ? data.iceServers : [];
    this.simulcast = data.simulcast === true;
    const seen = new Set([this.peerId]);
    for (const peer of data.peers || []) {
      seen.add(peer.peerId);
      const mic = (peer.producers || []).find((p) => p.source === "mic");
      this._addPeer(peer.peerId, peer.displayName, peer.role, !mic || mic.paused, peer.isGuest === true);
    }
    // After a reconnect: whoever left meanwhile is gone.
    for (const peerId of [...this.peers.keys()]) {
      if (!seen.has(peerId)) this._removePeer(peerId);
    }
    this.together.applyJoin(data);
    this._setSpotlight(data.spotlight ? data.spotlight.peerId : null);
    this.breakouts.applyJoin(data);
  }

  // The host's spotlight for everyone (null: none): that person takes everyone's stage, unless
  // someone pinned another for themselves (tiles.js layout(): a pin wins).
  _setSpotlight(peerId, { say = false } = {}) {
    const spotlit = typeof peerId === "string" && peerId ? peerId : null;
    const before = this.tiles.spotlightPeerId;
    this.tiles.setSpotlight(spotlit);
    if (!say || before === spotlit) return;
    if (spotlit === null) {
      this._announce("Spotlight removed");
      return;
    }
    const name = spotlit === this.peerId ? "You are" : `${(this.peers.get(spotlit) || {}).displayName || "Someone"} is`;
    this.toast(`${name} spotlighted for everyone`);
  }

  _enterCall() {
    this.state = "joined";
    $("#prejoin", this.root).hidden = true;
    $("#call-ended", this.root).hidden = true;
    $("#in-call", this.root).hidden = false;
    this.root.classList.add("call-active");
    this._setOutsideInert(true);
    // The same camera / microphone / speaker pickers, now in the in-call settings panel.
    $("#settings-body", this.root).prepend($("#device-pickers", this.root));
    this.meter.detach();
    $("#preview-video", this.root).srcObject = null;
    this.tiles.addPeer(this.peerId, this.displayName, { isLocal: true });
    this.people.upsert(this.peerId, { displayName: this.displayName, role: this.role, isLocal: true });
    this._showLocalVideo();
    this._renderToggles();
    this._startQuality();
    this._showJoiningInfo();
  }

  // The meeting's link, as this browser reached it, in "Meeting details" and, for the host or
  // a co-host who is first in, on a "Your meeting's ready" card (once per page, until closed).
  _showJoiningInfo() {
    const link = `${window.location.origin}/${this.mainCode}`;
    for (const input of $$("[data-join-link]", this.root)) input.value = link;
    for (const label of $$("[data-meeting-code-label]", this.root)) label.textContent = this.code;
    const firstIn = this.peers.size === 0 && ["host", "cohost"].includes(this.role);
    if (firstIn && !this.readyCardShown) {
      this.readyCardShown = true;
      $("#ready-card", this.root).hidden = false;
    }
  }

  async _copyJoinLink(button) {
    const input = button.parentElement.querySelector("[data-join-link]");
    if (!input) return;
    try {
      await navigator.clipboard.writeText(input.value);
      this.toast("Meeting link copied");
    } catch {
      // No clipboard here (an insecure origin, a refused permission): select it for Ctrl+C.
      input.focus();
      input.select();
      this.toast("Press Ctrl+C to copy the selected link");
    }
  }

  _restoreDevicePickers() {
    $("#prejoin", this.root).append($("#device-pickers", this.root));
  }

  _leaveCallUi() {
    this._restoreDevicePickers();
    $("#in-call", this.root).hidden = true;
    $("#prejoin", this.root).hidden = false;
    this.root.classList.remove("call-active");
    this._setOutsideInert(false);
    this.pin.unpin();
    this.tiles.clear();
    this.people.clear();
    this.peers.clear();
    this.together.clear();
  }

  // Creates the media session synchronously (before any await) so that a newConsumer request
  // arriving right after the join response already finds it.
  async _startMedia() {
    this._newMediaSession();
    await this._publish();
  }

  _newMediaSession() {
    this.media = new MediaSession(this.signaling, { iceServers: this.iceServers, simulcast: this.simulcast });
    this.media.addEventListener("consumer", (event) => this._onConsumer(event.detail));
    this.media.addEventListener("consumerclosed", (event) => this._onConsumerClosed(event.detail));
    this.media.addEventListener("connectionfailed", () => this._recoverMedia());
  }

  _publish() {
    return this.media.publish(
      { mic: this.devices.micTrack, camera: this.cameraOn ? this.devices.cameraTrack : null },
      { mic: !this.micOn, camera: !this.cameraOn },
    );
  }

  _addPeer(peerId, displayName, role, micPaused = true, isGuest = false) {
    if (peerId === this.peerId) return;
    const name = displayName || "Guest";
    const known = this.peers.get(peerId);
    if (known) {
      // Already shown (a reconnect's peer list, or media that came before newPeer): rename only.
      known.displayName = name;
      known.role = role || known.role;
      this.tiles.setName(peerId, peerLabel(known));
      this.people.upsert(peerId, { displayName: peerLabel(known), role: known.role });
      return;
    }
    const peer = { displayName: name, role, isGuest };
    this.peers.set(peerId, peer);
    queueMicrotask(() => this._adoptOrphans(peerId));
    this.tiles.addPeer(peerId, peerLabel(peer));
    this.tiles.setMicMuted(peerId, micPaused);
    this.tiles.setCameraOff(peerId, !this.tiles.tiles.get(peerId).track);
    this.people.upsert(peerId, { displayName: peerLabel(peer), role });
    this.people.setMicMuted(peerId, micPaused);
    this.breakouts.renderPeople();
  }

  _adoptOrphans(peerId) {
    for (const consumer of [...this.orphanConsumers.values()]) {
      if (consumer.peerId !== peerId) continue;
      this.orphanConsumers.delete(consumer.consumerId);
      if (this.media && this.media.consumers.has(consumer.consumerId)) this._onConsumer(consumer);
    }
  }

  _removePeer(peerId) {
    this.peers.delete(peerId);
    this.pin.forget(peerId);
    this.tiles.removePeer(peerId);
    this.people.remove(peerId);
    this.breakouts.renderPeople();
  }

  // --- server requests and notifications ---------------------------------------------------
  async _onServerRequest(method, data) {
    if (method === "newConsumer") {
      if (!this.media) throw new Error("not in the call");
      return this.media.handleNewConsumer(data);
    }
    const error = new Error(`unknown method ${method}`);
    error.code = "unknown_method";
    throw error;
  }

  _onNotification({ method, data }) {
    this.together.onNotification(method, data);
    this.breakouts.onNotification(method, data || {});
    switch (method) {
      case "newPeer":
        this._addPeer(data.peerId, data.displayName, data.role, true, data.isGuest === true);
        break;
      case "peerClosed":
        this._removePeer(data.peerId);
        break;
      case "peerDisplayNameChanged": {
        const peer = this.peers.get(data.peerId);
        if (peer) {
          peer.displayName = data.displayName;
          this.tiles.setName(data.peerId, peerLabel(peer));
          this.people.upsert(data.peerId, { displayName: peerLabel(peer), role: peer.role });
        }
        break;
      }
      case "consumerClosed":
        if (this.media) this.media.closeConsumer(data.consumerId);
        break;
      case "consumerPaused":
      case "consumerResumed":
        this._onConsumerPaused(data.consumerId, method === "consumerPaused");
        break;
      case "producerClosed":
        if (this.media && data.producerId === this.media.producerId("screen")) this._stopPresenting(false);
        break;
      case "spotlightChanged":
        this._setSpotlight(data.peerId ?? null, { say: true });
        break;
      case "activeSpeaker":
        this.tiles.setActiveSpeaker(data.peerId || null);
        this.people.setActiveSpeaker(data.peerId || null);
        break;
      case "downlinkLimited":
        this.quality.downlinkLimited = Boolean(data.limited);
        break;
      case "chatMessage":
        this.chat.receive(data.message);
        break;
      case "chatMessageDeleted":
        this.chat.markDeleted(data.messageId);
        if ($("#call-toast", this.root).dataset.messageId === String(data.messageId)) {
          this._hideToast();
        }
        break;
      case "mediaReset":
        this._publishAgain();
        break;
      case "mutedByHost":
        if (this.micOn && this.devices.micTrack) {
          this.micOn = false;
          this.devices.micTrack.enabled = false;
          if (this.media) {
            const out = this.media.outgoing.get("mic");
            if (out) out.paused = true;
          }
          this._renderToggles();
        }
        this.toast("The host muted your microphone.");
        break;
      case "meetingLocked":
        this._setLocked(Boolean(data.locked));
        this.toast(data.locked ? "The meeting was locked." : "The meeting was unlocked.");
        break;
      case "guestAccessChanged":
        this._setGuestAccess(Boolean(data.allowed));
        this.toast(data.allowed ? "Guests can now ask to join this call." : "Guests can no longer ask to join this call.");
        break;
      case "removed":
        this._end("removed");
        break;
      case "meetingEnded":
        this._end(endStateForMeetingEnded(data, { endedByMe: this.endedByMe }));
        break;
      case "lobbyKnock":
        // The notice that stays while anyone waits, the badge and the chime: _onLobbyChange.
        this.people.addKnock(data.request);
        break;
      case "lobbyResolved":
        if (data.request) this.people.resolveKnock(data.request.requestId);
        break;
      case "lobbyAdmitted":
      case "lobbyDenied":
      case "lobbyTimedOut":
        if (this._lobbyDecision) {
          this._lobbyDecision({ lobbyAdmitted: "admitted", lobbyDenied: "denied", lobbyTimedOut: "timeout" }[method]);
        }
        break;
      default:
        break;
    }
  }

  _onConsumer(consumer) {
    // Media of someone not (or no longer) in our list: newPeer may still be on its way, or they
    // just left. Keep it aside until they appear; consumerClosed discards it.
    if (!this.peers.has(consumer.peerId)) {
      this.orphanConsumers.set(consumer.consumerId, consumer);
      return;
    }
    if (consumer.kind === "audio") {
      this.tiles.addAudio(consumer.consumerId, consumer.track);
      this.tiles.setMicMuted(consumer.peerId, Boolean(consumer.producerPaused));
      this.people.setMicMuted(consumer.peerId, Boolean(consumer.producerPaused));
    } else if (consumer.source === "screen") {
      const peer = this.peers.get(consumer.peerId);
      this.tiles.setScreen(consumer.peerId, consumer.track, `${peer.displayName} is presenting`);
      this.toast(`${peer.displayName} is presenting`);
      this.views.watch(consumer.consumerId, this.tiles.screenVideoOf(consumer.peerId));
    } else {
      this.tiles.setVideo(consumer.peerId, consumer.track);
      this.tiles.setCameraOff(consumer.peerId, Boolean(consumer.producerPaused));
      this.views.watch(consumer.consumerId, this.tiles.videoOf(consumer.peerId));
      this._markFirstFrame(consumer.peerId);
    }
  }

  // performance.mark("meet:first-remote-frame") when the first remote picture is painted:
  // bench/join.py measures join time as the distance from "meet:join-click".
  _markFirstFrame(peerId) {
    if (this.firstFrameMarked) return;
    const video = this.tiles.videoOf(peerId);
    if (!video || !video.requestVideoFrameCallback) return;
    this.firstFrameMarked = true;
    video.requestVideoFrameCallback(() => performance.mark("meet:first-remote-frame"));
  }

  _onConsumerClosed(consumer) {
    this.orphanConsumers.delete(consumer.consumerId);
    this.views.unwatch(consumer.consumerId);
    if (consumer.kind === "audio") {
      this.tiles.removeAudio(consumer.consumerId);
    } else if (consumer.source === "screen") {
      this.tiles.setScreen(consumer.peerId, null);
    } else {
      const tile = this.tiles.tiles.get(consumer.peerId);
      if (tile && tile.track === consumer.track) {
        this.tiles.setVideo(consumer.peerId, null);
        this.tiles.setCameraOff(consumer.peerId, true);
      }
    }
  }

  _onConsumerPaused(consumerId, paused) {
    if (!this.media) return;
    const consumer = this.media.setConsumerPaused(consumerId, paused);
    if (!consumer) return;
    if (consumer.kind === "audio") {
      this.tiles.setMicMuted(consumer.peerId, paused);
      this.people.setMicMuted(consumer.peerId, paused);
    } else if (consumer.source !== "screen") {
      this.tiles.setCameraOff(consumer.peerId, paused);
    }
  }

  // A choice in a person's ⋮ menu (people.js): pinning stays on this page, the rest are
  // moderators' requests.
  _onPersonAction(action, data) {
    const name = data.peerId === this.peerId ? "You" : (this.peers.get(data.peerId) || {}).displayName;
    if (action === "pin") this.pin.pin(data.peerId, name || "");
    else if (action === "unpin") this.pin.unpin(name || "");
    else if (action === "spotlightForEveryone") this._moderate("spotlight", { peerId: data.peerId });
    else if (action === "removeSpotlight") this._moderate("spotlight", { peerId: null });
    else this._moderate(action, data);
  }

  _announce(text) {
    const announcer = $("#call-announcer", this.root);
    // Cleared first, so that saying the same thing twice is heard twice.
    announcer.textContent = "";
    requestAnimationFrame(() => { announcer.textContent = text; });
  }

  // --- moderation (hosts and co-hosts; docs/protocol.md "Moderators' requests") ----------------
  async _moderate(method, data) {
    if (!this.signaling || this.state !== "joined") return;
    if (method === "endMeeting") {
      if (!window.confirm("End the meeting for everyone?")) return;
      this.endedByMe = true; // meetingEnded may come before the response
    }
    try {
      const result = await this.signaling.request(method, data);
      if (method === "lockMeeting") this._setLocked(Boolean(result.locked ?? data.locked));
      if (method === "setGuestAccess") this._setGuestAccess(Boolean(result.allowed ?? data.allowed));
      if (method === "admitEntry" || method === "denyEntry") this.people.resolveKnock(data.requestId);
    } catch (error) {
      if (method === "setGuestAccess") this._setGuestAccess(this.guestsMayAsk); // as it was
      this.toast(error.message || "That did not work.");
    }
  }

  // --- the lobby, as hosts and co-hosts see it ------------------------------------------------
  // Who waits changed: the notice (names through textContent only), the badge, the chime.
  _onLobbyChange(waiting, added) {
    this._renderLobbyNotice(waiting);
    if (added) this.chime.play();
  }

  // The notice shows while anyone waits, except while People is open: the panel's own
  // "Waiting to join" list (Admit and Deny for each) is then in view, under where it would be.
  _renderLobbyNotice(waiting = this.people.waitingRequests()) {
    const count = waiting.length;
    const notice = $("#lobby-notice", this.root);
    const badge = $("#lobby-badge", this.root);
    badge.hidden = count === 0;
    $("[data-lobby-count]", badge).textContent = String(count);
    notice.hidden = count === 0 || !$("#people-panel", this.root).hidden;
    if (count === 0) return;
    const first = peerLabel({ displayName: waiting[0].displayName || "Someone", isGuest: waiting[0].isGuest === true });
    const others = count - 1;
    $("#lobby-notice-text", this.root).textContent = others === 0
      ? `${first} wants to join this call`
      : `${first} and ${others} ${others === 1 ? "other" : "others"} want to join this call`;
    // "Admit" for one person; for more, "View all" leads to each of them.
    $('[data-action="notice-admit"]', notice).hidden = count !== 1;
  }

  _admitFromNotice() {
    const waiting = this.people.waitingRequests();
    if (waiting.length === 1) this._moderate("admitEntry", { requestId: waiting[0].requestId });
  }

  // "View all": the People panel, at the waiting list.
  _viewLobby() {
    if ($("#people-panel", this.root).hidden) this._togglePanel("people-panel");
    const heading = $("#lobby-heading", this.root);
    heading.scrollIntoView({ block: "nearest" });
    heading.focus();
  }

  _setGuestAccess(allowed) {
    this.guestsMayAsk = allowed;
    $("#guest-access-switch", this.root).checked = allowed;
  }

  async _loadLobby() {
    try {
      const { requests } = await this.signaling.request("lobbyRequests", {});
      for (const request of requests || []) this.people.addKnock(request);
    } catch (error) {
      console.warn("lobbyRequests", error);
    }
  }

  _setLocked(locked) {
    this.locked = locked;
    const lockButton = $('[data-action="toggle-lock"]', this.root);
    lockButton.textContent = locked ? "Unlock meeting" : "Lock meeting";
    lockButton.setAttribute("aria-pressed", String(locked));
    // Everyone sees that nobody new can join (the host controls are for moderators only).
    $("#lock-indicator", this.root).hidden = !locked;
  }

  // --- presenting ---------------------------------------------------------------------------
  async togglePresent() {
    if (this.state !== "joined" || !this.media) return;
    if (this.presenting) {
      await this._stopPresenting(true);
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    } catch (error) {
      if (error.name !== "NotAllowedError") this.toast("Could not share the screen.");
      return;
    }
    const track = stream.getVideoTracks()[0];
    track.contentHint = "detail";
    track.addEventListener("ended", () => this._stopPresenting(true));
    this.presenting = true;
    this._renderToggles();
    this.tiles.setPresentingNotice(true);
    try {
      await this.media.startScreen(track);
    } catch (error) {
      console.error("present failed", error);
      this.toast("Could not share the screen.");
      await this._stopPresenting(true);
    }
  }

  async _stopPresenting(closeProducer) {
    if (!this.presenting) return;
    this.presenting = false;
    this._renderToggles();
    this.tiles.setPresentingNotice(false);
    if (this.media) {
      if (closeProducer) {
        await this.media.stopScreen();
      } else {
        const screen = this.media.outgoing.get("screen");
        if (screen) {
          screen.producerId = null;
          screen.track.stop();
          await screen.transceiver.sender.replaceTrack(null);
        }
      }
    }
  }

  // --- recovery -----------------------------------------------------------------------------
  // The WebSocket came back: join again with the same peerId. If the server kept our media
  // session (`resumed`), the peer connections carry on; otherwise publish again.
  async _onReconnected() {
    if (this.state !== "joined") return;
    try {
      const data = await this.signaling.request("join", { peerId: this.peerId, displayName: this.displayName });
      const keptMedia = data.resumed === true && this.media && this._mediaHealthy();
      if (!keptMedia) {
        this._closeMedia();
        this.firstFrameMarked = false; // the first frame on the new connection is marked again
      }
      this._applyJoin(data);
      const media = keptMedia ? Promise.resolve() : this._startMedia();
      this._banner("");
      await this.chat.catchUp();
      await media;
    } catch (error) {
      console.warn("rejoin after reconnect failed", error);
      // The socket closes on its own if the server went away again; otherwise start over.
      if (this.signaling && this.signaling.connected) this.signaling.dropForRecovery();
    }
  }

  _mediaHealthy() {
    const ok = (pc) => !pc || !["failed", "closed"].includes(pc.connectionState);
    return ok(this.media.sendPc) && ok(this.media.recvPc);
  }

  _closeMedia() {
    this.orphanConsumers.clear();
    if (!this.media) return;
    const media = this.media;
    this.media = null;
    media.close({ stopTracks: false });
    if (this.presenting) {
      this.presenting = false;
      this.tiles.setPresentingNotice(false);
      this._renderToggles();
    }
  }

  // ICE failed on a peer connection. aiortc has no ICE restart, so the SFU's restartIce
  // replaces both transports: we drop ours first (the SFU's next newConsumer offer then lands
  // on a fresh receive PC) and publish again on a fresh send PC, which the SFU re-attaches to
  // the same producers. If that fails, leave and join again with the same identity.
  async _recoverMedia() {
    if (this.recovering || this.state !== "joined" || !this.signaling || !this.signaling.connected) return;
    this.recovering = true;
    this._banner("Reconnecting media…");
    try {
      this._closeMedia();
      this._newMediaSession();
      try {
        await this.signaling.request("restartIce");
        await this._publish();
      } catch (error) {
        console.warn("restartIce failed; joining again", error);
        this._closeMedia();
        await this.signaling.request("leave").catch(() => {});
        const data = await this._requestJoin();
        this._applyJoin(data);
        await this._startMedia();
      }
      this._banner("");
    } catch (error) {
      console.error("media recovery failed", error);
      this._end("failed");
    } finally {
      this.recovering = false;
    }
  }

  // The room moved to another media server (its own stopped): the server has joined us there
  // already, so the old peer connections are dropped and we publish again on a fresh send PC;
  // the others' media comes back as newConsumer offers on a fresh receive PC. The session is
  // created before any await, so an offer right behind this notification finds it.
  async _publishAgain() {
    if (this.state !== "joined" || !this.signaling) return;
    this._banner("Reconnecting media…");
    this._closeMedia();
    this.firstFrameMarked = false;
    this._newMediaSession();
    try {
      await this._publish();
      this._banner("");
    } catch (error) {
      console.warn("publishing on the new media server failed", error);
      this._banner("");
      if (this.signaling && this.signaling.connected) this.toast("Your camera and microphone could not be sent.");
    }
  }

  _banner(text) {
    const banner = $("#call-banner", this.root);
    banner.textContent = text;
    banner.hidden = !text;
  }

  // messageId: the chat message a preview shows (taken down if that message is deleted).
  toast(text, { messageId = null } = {}) {
    const toast = $("#call-toast", this.root);
    toast.textContent = text;
    toast.dataset.messageId = messageId === null ? "" : String(messageId);
    toast.hidden = false;
    clearTimeout(this._toastTimer);
    this._toastTimer = setTimeout(() => this._hideToast(), TOAST_MS);
  }

  _hideToast() {
    const toast = $("#call-toast", this.root);
    toast.hidden = true;
    toast.textContent = "";
    toast.dataset.messageId = "";
  }

  // --- quality --------------------------------------------------------------------------------
  _startQuality() {
    clearInterval(this.qualityTimer);
    this.qualityTimer = setInterval(async () => {
      if (!this.media) return;
      try {
        const stats = await this.media.stats();
        const result = this.quality.evaluate(stats, this.media.consumers.values());
        for (const [peerId, level] of result) {
          if (peerId === "local") {
            const reason = this.quality.downlinkLimited ? DOWNLINK_LIMITED_REASON : "";
            this.tiles.setQuality(this.peerId, level, reason);
          } else {
            this.tiles.setQuality(peerId, level);
          }
        }
      } catch (error) {
        console.warn("stats", error);
      }
    }, QUALITY_INTERVAL_MS);
  }

  // --- leaving ------------------------------------------------------------------------------
  async leave() {
    if (this.state !== "joined") return;
    this.state = "ended";
    if (this.signaling) {
      try {
        await this.signaling.request("leave", {}, { timeoutMs: 2000 });
      } catch (error) {
        console.warn("leave", error);
      }
    }
    this._teardown();
    this._showEnded("left");
  }

  // The call is over for this page: one end screen (`key`: end-states.js), nothing running.
  _end(key) {
    if (this.state === "ended" && !$("#call-ended", this.root).hidden) return;
    if (this._lobbyDecision) this._lobbyDecision("ended"); // no longer asking to be let in
    this.state = "ended";
    this._teardown();
    this._showEnded(key);
  }

  _teardown() {
    clearInterval(this.qualityTimer);
    this._restoreDevicePickers();
    if (this.signaling) this.signaling.close();
    this.signaling = null;
    this.chat.setSignaling(null);
    this._closeMedia();
    this.devices.stopAll();
    $("#preview-video", this.root).srcObject = null; // an end before joining: no frozen picture
    this.meter.detach();
    this.pin.unpin();
    this.layoutDialog.close();
    this.tiles.clear();
    this.people.clear();
    this.peers.clear();
    this.together.clear();
    this.breakouts.clear();
    this._banner("");
    this.root.classList.remove("call-active");
  }

  // One screen: its heading (focused, for screen readers and keyboards), one line of detail
  // at most, and only the actions that can work; the pre-join's lines ("The meeting is on
  // now", "Joining as") go away with the pre-join.
  _showEnded(key) {
    const screen = this.endScreens[key] || { title: key, detail: "" };
    const actions = endActions(key, { mayStartNextCall: this.mayStartNextCall });
    $("#prejoin", this.root).hidden = true;
    $("#in-call", this.root).hidden = true;
    this._setOutsideInert(false);
    if (this.page) this.page.classList.add("is-ended");
    const ended = $("#call-ended", this.root);
    ended.dataset.endState = key;
    $("#call-ended-message", this.root).textContent = screen.title;
    const detail = $("#call-ended-detail", this.root);
    detail.textContent = screen.detail || "";
    detail.hidden = !screen.detail;
    $('[data-action="rejoin"]', ended).hidden = !actions.rejoin;
    $('[data-action="ask-again"]', ended).hidden = !actions.askAgain;
    $('[data-end-action="sign-in"]', ended).hidden = !actions.signIn;
    ended.hidden = false;
    $("#call-ended-message", this.root).focus();
  }

  // "Rejoin" (after leaving, a lost connection, an end the person may restart) or "Ask again"
  // (after the lobby's no): back into the same meeting, through the pre-join screen.
  async rejoin() {
    if (this.state !== "ended") return;
    $("#call-ended", this.root).hidden = true;
    if (this.page) this.page.classList.remove("is-ended");
    $("#prejoin", this.root).hidden = false;
    this.endedByMe = false;
    this.state = "prejoin";
    this.firstFrameMarked = false;
    // Back to the meeting itself: it sends an assigned person on to their breakout room.
    this.code = this.mainCode;
    this.wsUrl = this._wsUrlFor(this.code);
    await this.devices.open();
    this.micOn = Boolean(this.devices.micTrack) && this.micOn;
    this.cameraOn = Boolean(this.devices.cameraTrack) && this.cameraOn;
    if (!this.cameraOn) this.devices.stopCamera();
    if (this.devices.micTrack) this.devices.micTrack.enabled = this.micOn;
    this._renderToggles();
    this._showPreview();
    await this.join();
  }
}

const root = document.getElementById("call");
if (root) {
  const call = new Call(root);
  // A debugging handle (and what bench/join.py uses to time signaling round trips).
  window.meetCall = call;
  call.start().catch((error) => {
    console.error(error);
    $("#prejoin-status", root).textContent = "Something went wrong while preparing the call.";
  });
}
