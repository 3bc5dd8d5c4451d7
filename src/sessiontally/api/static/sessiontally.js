/* sessiontally.js: the first-party tracker for web pages.
 *   <script src="https://ANALYTICS.HOST/js/sessiontally.js" data-write-key="wk_..."></script>
 * Sends Segment-style messages to the tracking API of the host it is served from: a
 * `page` on load and on each history navigation, and whatever the page calls through
 * window.sessiontally. It sets no cookie: the anonymous id lives in localStorage, or in
 * memory when storage is blocked. */
(function (w, d) {
  "use strict";
  if (w.sessiontally && w.sessiontally.version) return; // included twice: the first one counts
  var script = d.currentScript || d.querySelector("script[data-write-key]");
  if (!script || !w.fetch) return;
  var VERSION = "1.0.0";
  var writeKey = script.getAttribute("data-write-key");
  var endpoint = new URL(script.src, location.href).origin + "/v1/batch";
  var AID = "sessiontally.anonymousId", UID = "sessiontally.userId";
  var memory = {}, queue = [], timer = 0;

  function load(key) {
    try {
      var value = localStorage.getItem(key);
      if (value != null) return value;
    } catch (e) {}
    return memory[key] || null;
  }
  function save(key, value) {
    memory[key] = value;
    try {
      value == null ? localStorage.removeItem(key) : localStorage.setItem(key, value);
    } catch (e) {}
  }
  // randomUUID exists only in secure contexts; getRandomValues everywhere.
  function uuid() {
    var c = w.crypto, b = new Uint8Array(16), h = "", i;
    if (c && c.randomUUID) return c.randomUUID();
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    for (i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1);
    return h.replace(/(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");
  }

  var anonymousId = load(AID) || uuid();
  var userId = load(UID);
  var referrer = d.referrer, lastPage = null;
  save(AID, anonymousId);

  function where() {
    return { path: location.pathname, referrer: referrer, search: location.search,
             title: d.title, url: location.href };
  }
  function zone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) {}
  }
  function send(batch, attempt) {
    // text/plain and the key in the body: a simple request, no CORS preflight.
    var body = JSON.stringify({ batch: batch, writeKey: writeKey, sentAt: new Date().toISOString() });
    fetch(endpoint, { method: "POST", body: body, keepalive: true, credentials: "omit",
                      headers: { "Content-Type": "text/plain" } })
      .then(function (r) { if (r.status >= 500 || r.status == 429) throw r; })
      .catch(function () {
        // The server drops repeated messageIds, so a retry never counts twice.
        if (attempt < 4) setTimeout(function () { send(batch, attempt + 1); }, 1000 << attempt);
      });
  }
  // Small batches: keepalive bodies in flight are capped at 64 KB per page.
  function flush() {
    clearTimeout(timer);
    timer = 0;
    while (queue.length) send(queue.splice(0, 20), 0);
  }
  function enqueue(type, fields) {
    var message = { type: type, messageId: uuid(), timestamp: new Date().toISOString(),
                    anonymousId: anonymousId,
                    context: { library: { name: "sessiontally.js", version: VERSION }, page: where(),
                               userAgent: navigator.userAgent, locale: navigator.language,
                               timezone: zone() } };
    if (userId) message.userId = userId;
    for (var k in fields) message[k] = fields[k];
    queue.push(message);
    if (!timer) timer = setTimeout(flush, 0); // calls of one task share a request
  }

  var api = {
    version: VERSION,
    page: function (name, properties) {
      var props = where();
      for (var k in properties || {}) props[k] = properties[k];
      lastPage = location.href.split("#")[0];
      enqueue("page", name == null ? { properties: props } : { name: String(name), properties: props });
    },
    track: function (event, properties) {
      enqueue("track", { event: String(event), properties: properties || {} });
    },
    identify: function (id, traits) {
      if (id !== null && typeof id == "object") { traits = id; id = null; }
      if (id != null) save(UID, (userId = String(id)));
      enqueue("identify", { traits: traits || {} });
    },
    // Sign-out: forget the user and start a new anonymous person.
    reset: function () {
      save(UID, (userId = null));
      save(AID, (anonymousId = uuid()));
    },
    flush: flush
  };
  w.sessiontally = api;

  // A navigation is a new URL; a change of the #fragment alone is not a page.
  function navigated() {
    if (location.href.split("#")[0] == lastPage) return;
    referrer = lastPage;
    api.page();
  }
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      navigated();
      return result;
    };
  });
  w.addEventListener("popstate", navigated);
  w.addEventListener("pagehide", flush);
  api.page();
})(window, document);
