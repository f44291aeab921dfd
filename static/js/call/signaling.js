// protoo-style signaling over one WebSocket (docs/protocol.md): requests and responses in both
// directions plus notifications, with automatic reconnection and exponential backoff.
//
// Events (EventTarget): "open" {detail: {reconnected}}, "disconnected" {detail: {code}},
// "failed" {detail: {code, reason}} (permanent: no more retries), "notification"
// {detail: {method, data}}. Server requests go to the `onRequest(method, data)` callback,
// whose resolved value is the response data (a thrown error becomes an error response).

const DEFAULT_REQUEST_TIMEOUT_MS = 15000;
// Close codes after which retrying cannot help (docs/protocol.md): not signed in (or signed out
// since), removed by the host, no such meeting or not allowed in it, replaced, meeting ended, a
// frame too big. The server accepts the socket before closing it, so these codes do arrive;
// anything else (4500 server error, 1006 network) is retried with backoff.
const PERMANENT_CLOSE_CODES = new Map([
  [4401, "You are signed out. Sign in again to join."],
  [4403, "You were removed from this meeting."],
  [4404, "This meeting does not exist, or you may not join it."],
  [4409, "You joined this meeting from another tab."],
  [4410, "The meeting has ended."],
  [4413, "The browser sent a message too big for the server."],
]);

export class RequestError extends Error {
  constructor(code, reason) {
    super(reason || code);
    this.code = code;
  }
}

export class SignalingClient extends EventTarget {
  constructor(url, {
    requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
    backoffInitialMs = 250,
    backoffMaxMs = 5000,
    maxReconnectMs = 60000,
  } = {}) {
    super();
    this.url = url;
    this.requestTimeoutMs = requestTimeoutMs;
    this.backoffInitialMs = backoffInitialMs;
    this.backoffMaxMs = backoffMaxMs;
    this.maxReconnectMs = maxReconnectMs;
    this.onRequest = async () => { throw new RequestError("unsupported", "no handler"); };
    this._socket = null;
    this._nextId = 1;
    this._pending = new Map();
    this._closedByUs = false;
    this._attempt = 0;
    this._disconnectedSince = null;
    this._reconnectTimer = null;
    this._everOpened = false;
  }

  get connected() {
    return this._socket !== null && this._socket.readyState === WebSocket.OPEN;
  }

  // Resolves when the first connection opens; rejects if it cannot be opened at all.
  connect() {
    this._closedByUs = false;
    return new Promise((resolve, reject) => {
      const onOpen = () => { cleanup(); resolve(); };
      const onFail = (event) => { cleanup(); reject(new RequestError("connect_failed", event.detail.reason)); };
      const cleanup = () => {
        this.removeEventListener("open", onOpen);
        this.removeEventListener("failed", onFail);
      };
      this.addEventListener("open", onOpen);
      this.addEventListener("failed", onFail);
      this._open();
    });
  }

  close() {
    this._closedByUs = true;
    clearTimeout(this._reconnectTimer);
    if (this._socket) this._socket.close(1000, "leaving");
    this._rejectPending(new RequestError("closed", "connection closed"));
  }

  // Test and recovery hook: drop the current socket as a network failure would; the usual
  // reconnection then runs.
  dropForRecovery() {
    if (this._socket) this._socket.close(4000, "client reconnect");
  }

  request(method, data = {}, { timeoutMs = this.requestTimeoutMs } = {}) {
    if (!this.connected) {
      return Promise.reject(new RequestError("disconnected", "not connected to the meeting"));
    }
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new RequestError("timeout", `${method} timed out`));
      }, timeoutMs);
      this._pending.set(id, { resolve, reject, timer, method });
      this._send({ request: true, id, method, data });
    });
  }

  notify(method, data = {}) {
    if (this.connected) this._send({ notification: true, method, data });
  }

  _send(message) {
    this._socket.send(JSON.stringify(message));
  }

  _open() {
    const socket = new WebSocket(this.url);
    this._socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this._socket) return;
      const reconnected = this._everOpened;
      this._everOpened = true;
      this._attempt = 0;
      this._disconnectedSince = null;
      this.dispatchEvent(new CustomEvent("open", { detail: { reconnected } }));
    });
    socket.addEventListener("message", (event) => {
      if (socket === this._socket) this._onMessage(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (socket === this._socket) this._onClose(event);
    });
  }

  _onClose(event) {
    this._socket = null;
    this._rejectPending(new RequestError("disconnected", "connection lost"));
    if (this._closedByUs) return;
    const permanent = PERMANENT_CLOSE_CODES.get(event.code);
    if (permanent) {
      this.dispatchEvent(new CustomEvent("failed", { detail: { code: event.code, reason: permanent } }));
      return;
    }
    const now = Date.now();
    if (this._disconnectedSince === null) this._disconnectedSince = now;
    this.dispatchEvent(new CustomEvent("disconnected", { detail: { code: event.code } }));
    if (now - this._disconnectedSince > this.maxReconnectMs) {
      this.dispatchEvent(new CustomEvent("failed", {
        detail: { code: event.code, reason: "Lost the connection to the meeting." },
      }));
      return;
    }
    // Exponential backoff with jitter so that a restarted server is not hit by everyone at once.
    const base = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** this._attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this._attempt += 1;
    this._reconnectTimer = setTimeout(() => this._open(), delay);
  }

  _rejectPending(error) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this._pending.clear();
  }

  _onMessage(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      console.warn("signaling: ignoring a frame that is not JSON");
      return;
    }
    if (message === null || typeof message !== "object") return;
    if (message.response) {
      const pending = this._pending.get(message.id);
      if (!pending) return;
      this._pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.ok) pending.resolve(message.data || {});
      else pending.reject(new RequestError(message.errorCode || "error", message.errorReason || ""));
    } else if (message.request) {
      this._answer(message);
    } else if (message.notification) {
      this.dispatchEvent(new CustomEvent("notification", {
        detail: { method: message.method, data: message.data || {} },
      }));
    }
  }

  async _answer({ id, method, data }) {
    const socket = this._socket;
    let response;
    try {
      const result = await this.onRequest(method, data || {});
      response = { response: true, id, ok: true, data: result || {} };
    } catch (error) {
      response = {
        response: true, id, ok: false,
        errorCode: error.code || "client_error", errorReason: String(error.message || error),
      };
    }
    // Answer on the socket the request came in on; a reconnect in between voids the request.
    if (socket === this._socket && this.connected) this._send(response);
  }
}
