// Service worker: the app shell, cache-first, so that after one online visit every screen
// opens with no network, also after a browser restart. The cache is versioned by a hash of
// every shell file (pkg/shell-version.js, written by the wasm build): when any file
// changes, that script changes, the browser installs this worker anew, it fetches the
// files afresh and drops the old cache once it takes over.
// Never cached: the API (/api/), the sync socket (/sync), /healthz, /metrics.

importScripts('pkg/shell-version.js');
const VERSION = self.CARESYNC_SHELL_VERSION || 'caresync-shell-unversioned';
const CACHE_PREFIX = 'caresync-shell-';

/** Without these the app cannot start: installation fails if one is missing. */
const SHELL = [
  './',
  'index.html',
  'manifest.webmanifest',
  'css/app.css',
  'icons/icon.svg',
  'icons/icon-192.png',
  'icons/icon-512.png',
  'js/app.js',
  'js/auth.js',
  'js/engine.js',
  'js/i18n.js',
  'js/i18n-screens.js',
  'js/store.js',
  'js/sync.js',
  'js/ui.js',
  'js/screens/director.js',
  'js/screens/worker.js',
  'js/screens/reviewer.js',
  'js/screens/charts.js',
  'pkg/caresync_wasm.js',
  'pkg/shell-version.js',
  'pkg/caresync_wasm_bg.wasm',
];

const NEVER = [/^\/api\//, /^\/sync(\/|$|\?)/, /^\/healthz$/, /^\/metrics$/];

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(VERSION);
      await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== VERSION) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (NEVER.some((pattern) => pattern.test(url.pathname))) return;
  if (request.headers.get('upgrade') === 'websocket') return;
  const scope = new URL(self.registration.scope).pathname;
  if (request.mode === 'navigate' && (url.pathname === scope || url.pathname === `${scope}index.html`)) {
    event.respondWith(navigation(request));
    return;
  }
  if (request.mode === 'navigate') return;
  event.respondWith(cacheFirst(request));
});

/** Every page of the app is index.html; the route is in the hash. */
async function navigation(request) {
  const cache = await caches.open(VERSION);
  const cached = (await cache.match('index.html')) ?? (await cache.match('./'));
  if (cached) return cached;
  return fetch(request);
}

async function cacheFirst(request) {
  const cache = await caches.open(VERSION);
  const cached = await cache.match(request, { ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === 'basic') {
    // A module added after this version was installed: keep it for offline use too.
    cache.put(request, response.clone()).catch(() => undefined);
  }
  return response;
}
