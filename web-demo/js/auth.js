// Login, offline unlock and logout. The first login of an account on a device must reach
// the relay (`POST /api/v1/login`, which sets the HttpOnly session cookie); the device then
// keeps the account and a PBKDF2-SHA256 verifier of the password in the device database's
// `kv`, so the same account unlocks later without a network. The password itself is never
// stored. An unlocked account stays unlocked for the browser session (sessionStorage).

import { Store } from './store.js';

const ITERATIONS = 150_000;
const SESSION_KEY = 'caresync.session';
const LAST_USER_KEY = 'caresync.lastUser';

export class AuthError extends Error {
  /** code: 'invalid-credentials' | 'too-many-requests' | 'first-login-online' | 'server' */
  constructor(code, detail) {
    super(detail || code);
    this.code = code;
  }
}

const encoder = new TextEncoder();

function toHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function derive(password, salt, iterations) {
  const key = await crypto.subtle.importKey('raw', encoder.encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256);
  return toHex(bits);
}

function equalText(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

async function withDevice(fn) {
  const store = await Store.device();
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

async function remember(username, password, account) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await derive(password, salt, ITERATIONS);
  await withDevice((store) =>
    store.kvSet(`account:${username}`, {
      account,
      verifier: { algorithm: 'PBKDF2-SHA256', iterations: ITERATIONS, salt, hash },
      savedAt: Date.now(),
    }),
  );
}

async function unlockOffline(username, password) {
  const saved = await withDevice((store) => store.kvGet(`account:${username}`));
  if (!saved) throw new AuthError('first-login-online');
  const { salt, iterations, hash } = saved.verifier;
  const candidate = await derive(password, salt, iterations);
  if (!equalText(candidate, hash)) throw new AuthError('invalid-credentials');
  return saved.account;
}

/**
 * Logs in. Online: the relay decides (a 401 is final, no offline fallback). Without a
 * network or with the relay down: the verifier kept on this device decides.
 * Resolves with `{account, offline}`.
 */
export async function login(username, password) {
  username = username.trim();
  let response = null;
  if (navigator.onLine !== false) {
    try {
      response = await fetch('/api/v1/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password }),
        cache: 'no-store',
      });
    } catch {
      response = null; // no network: unlock offline
    }
  }
  if (response && response.ok) {
    const body = await response.json();
    await remember(username, password, body.account);
    startSession(username, body.account);
    return { account: body.account, offline: false };
  }
  if (response && response.status === 401) throw new AuthError('invalid-credentials');
  if (response && response.status === 429) throw new AuthError('too-many-requests');
  const account = await unlockOffline(username, password);
  startSession(username, account);
  return { account, offline: true };
}

function startSession(username, account) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ username, accountId: account.id }));
  localStorage.setItem(LAST_USER_KEY, username);
}

/** The account unlocked in this browser session, or null. */
export async function currentAccount() {
  const raw = sessionStorage.getItem(SESSION_KEY);
  if (!raw) return null;
  try {
    const { username } = JSON.parse(raw);
    const saved = await withDevice((store) => store.kvGet(`account:${username}`));
    return saved?.account ?? null;
  } catch {
    return null;
  }
}

export function lastUsername() {
  return localStorage.getItem(LAST_USER_KEY) ?? '';
}

/** Ends the session here and on the relay (if reachable). Data stays on the device. */
export async function logout() {
  sessionStorage.removeItem(SESSION_KEY);
  try {
    await fetch('/api/v1/logout', { method: 'POST', credentials: 'same-origin', cache: 'no-store' });
  } catch {
    // Offline: the cookie expires on its own; the relay ends the session then.
  }
}
