// The WebSocket to the relay's `/sync` on the same origin. The HttpOnly session cookie
// authenticates it, so page scripts never hold the token. Reconnects with exponential
// backoff and full jitter, follows the browser's online/offline events, and reports a
// status: 'offline' | 'syncing' | 'synced' (plus 'signed-out' when the relay ended the
// session), with the number of records waiting to reach the relay.

const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
/** Close code the relay sends when the session ended (logout, expiry, disabled account). */
const SESSION_ENDED = 4001;
/** Failed attempts in a row before asking `/api/v1/me` whether the session is still valid. */
const FAILURES_BEFORE_SESSION_CHECK = 2;

export class SyncClient {
  constructor(engine, { url } = {}) {
    this.engine = engine;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.url = url ?? `${scheme}//${location.host}/sync`;
    this.socket = null;
    this.connection = 0;
    this.nextConnection = 1;
    this.attempt = 0;
    this.failures = 0;
    this.timer = null;
    this.stopped = true;
    this.open = false;
    this.peerReady = false;
    this.scopeSynced = false;
    this.signedOut = false;
    this.lastStatus = null;
    this.nextRetryAt = null;
    this.offs = [];
    this.onOnline = () => this.connectNow();
    this.onOffline = () => {
      this.socket?.close(1000, 'offline');
      this.publish();
    };
  }

  start() {
    this.stopped = false;
    this.engine.transport = this;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.offs.push(
      this.engine.on('peer-ready', () => {
        this.peerReady = true;
        this.attempt = 0;
        this.failures = 0;
        this.publish();
      }),
      this.engine.on('scope-synced', () => {
        this.scopeSynced = true;
        this.publish();
      }),
      this.engine.on('unsynced', () => this.publish()),
      this.engine.on('storage-idle', () => this.publish()),
    );
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    for (const off of this.offs) off();
    this.offs = [];
    this.socket?.close(1000, 'logout');
    this.socket = null;
  }

  /** After a new login: the session is valid again. */
  resume() {
    this.signedOut = false;
    this.connectNow();
  }

  connectNow() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    if (!this.socket) this.connect();
  }

  connect() {
    this.timer = null;
    this.nextRetryAt = null;
    if (this.stopped || this.socket || this.signedOut) return;
    if (navigator.onLine === false) {
      this.publish();
      return;
    }
    const connection = this.nextConnection++;
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      console.warn('caresync: cannot open the sync socket', error);
      this.retry();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    this.connection = connection;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.open = true;
      this.engine.connectionOpened(connection);
      this.publish();
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket || typeof event.data === 'string') return;
      this.engine.frameReceived(connection, new Uint8Array(event.data));
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      const wasOpen = this.open;
      this.socket = null;
      this.open = false;
      this.peerReady = false;
      this.scopeSynced = false;
      if (wasOpen) this.engine.connectionClosed(connection);
      if (event.code === SESSION_ENDED) {
        this.signedOut = true;
        this.publish();
        return;
      }
      if (!wasOpen) this.failures += 1;
      this.publish();
      if (this.failures >= FAILURES_BEFORE_SESSION_CHECK) this.checkSession();
      this.retry();
    };
  }

  retry() {
    if (this.stopped || this.signedOut) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt = Math.min(this.attempt + 1, 16);
    this.nextRetryAt = Date.now() + delay;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** A socket that keeps failing to open may mean the session cookie expired. */
  async checkSession() {
    if (navigator.onLine === false) return;
    try {
      const response = await fetch('/api/v1/me', { credentials: 'same-origin', cache: 'no-store' });
      if (response.status === 401) {
        this.signedOut = true;
        clearTimeout(this.timer);
        this.publish();
      }
    } catch {
      // The relay is unreachable: keep retrying with backoff.
    }
  }

  // ----- the engine's transport --------------------------------------------------------

  send(connection, frame) {
    if (connection === this.connection && this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(frame);
    }
  }

  close(connection, reason) {
    if (connection !== this.connection || !this.socket) return;
    const text = typeof reason === 'string' ? reason : JSON.stringify(reason ?? '');
    try {
      this.socket.close(4000, text.slice(0, 100));
    } catch {
      this.socket.close();
    }
  }

  // ----- status --------------------------------------------------------------------------

  status() {
    const pending = this.engine.unsyncedDocuments().length;
    let state;
    if (this.signedOut) state = 'signed-out';
    else if (!this.open || !this.peerReady || navigator.onLine === false) state = 'offline';
    // Records the relay sent are only on this phone once IndexedDB has them: a first sync
    // of thousands of records used to say "synced" with thousands of writes still queued.
    else if (!this.scopeSynced || pending > 0 || this.engine.storageInFlight > 0) state = 'syncing';
    else state = 'synced';
    if (state === 'offline' && this.open) state = 'syncing';
    return { state, pending, nextRetryAt: this.nextRetryAt };
  }

  publish() {
    const status = this.status();
    const key = `${status.state}/${status.pending}`;
    if (key === this.lastStatus) return;
    this.lastStatus = key;
    this.engine.emit('sync-status', status);
  }
}
