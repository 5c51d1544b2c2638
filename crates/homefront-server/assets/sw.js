// Homefront's service worker, served at /sw.js (scope: the whole site).
//
// - Assets: cached on install, served from the cache (the cache's name
//   carries the assets' version, so a new release replaces them).
// - Pages: always from the network. Only pages the server marks with
//   `X-Homefront-Offline` are kept for offline use: the volunteer's offer
//   list and a live assignment (with its address). An assignment page that
//   is no longer live is dropped as soon as the server says so, the offer
//   list names the live ones (`X-Homefront-Live-Assignments`) and any other
//   is dropped, no copy is older than a day, and signing out (or a page
//   that sends to the sign-in) clears them all.
// - Offline: a kept page is shown with the time it was fetched; check-in
//   and check-out are queued with the time they happened
//   (offline-queue.js) and sent when the network returns.
// - Web Push: shows the alert (no street, phone or name in it); a tap
//   opens the offer or the order.
"use strict";
importScripts("/assets/offline-queue.js");

var VERSION = "__VERSION__";
var ASSETS = "hf-assets-" + VERSION;
var PAGES = "hf-pages";
var PRECACHE = [
  "/assets/app.css", "/assets/app.js", "/assets/pwa.js", "/assets/offline-queue.js",
  "/assets/icon.svg", "/assets/icon-192.png",
  "/assets/vendor/htmx-2.0.11.min.js", "/assets/vendor/htmx-ext-sse-2.2.4.min.js",
  "/offline",
];
// No kept page is shown after this long (ms).
var MAX_AGE = 24 * 3600 * 1000;
var ASSIGNMENT = /^\/assignments\/(\d+)$/;
var CHECK = /^\/assignments\/(\d+)\/(check-in|check-out)$/;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(ASSETS).then(function (c) { return c.addAll(PRECACHE); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) {
      return k.indexOf("hf-assets-") === 0 && k !== ASSETS;
    }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

function clearPages() {
  return caches.delete(PAGES);
}

// Keeps only the assignment pages in `live` (ids as text).
function keepAssignments(live) {
  return caches.open(PAGES).then(function (c) {
    return c.keys().then(function (reqs) {
      return Promise.all(reqs.map(function (r) {
        var m = new URL(r.url).pathname.match(ASSIGNMENT);
        if (m && live.indexOf(m[1]) < 0) return c.delete(r);
        return null;
      }));
    });
  });
}

function store(path, res) {
  return res.clone().text().then(function (html) {
    var headers = new Headers(res.headers);
    headers.set("x-hf-fetched-at", String(Date.now()));
    return caches.open(PAGES).then(function (c) {
      return c.put(path, new Response(html, { status: 200, headers: headers }));
    });
  });
}

// The kept copy of `path`, marked as such for the page's script, or null.
function kept(path) {
  return caches.open(PAGES).then(function (c) {
    return c.match(path).then(function (res) {
      if (!res) return null;
      var at = Number(res.headers.get("x-hf-fetched-at")) || 0;
      if (Date.now() - at > MAX_AGE) return c.delete(path).then(function () { return null; });
      return res.text().then(function (html) {
        html = html.replace("<body ", '<body data-offline-copy="' + at + '" ');
        return new Response(html, { status: 200, headers: res.headers });
      });
    });
  });
}

function page(event) {
  var req = event.request;
  var path = new URL(req.url).pathname;
  return fetch(req).then(function (res) {
    var work;
    var keepable = path === "/volunteer" || ASSIGNMENT.test(path);
    if (keepable && (res.type === "opaqueredirect" || res.redirected)) {
      // These pages redirect only to the sign-in page: the session ended
      // (signed out elsewhere, expired); nothing of it stays here.
      work = clearPages();
    } else if (res.ok && res.headers.get("x-homefront-offline")) {
      work = store(path, res);
      var live = res.headers.get("x-homefront-live-assignments");
      if (live !== null) {
        work = work.then(function () { return keepAssignments(live.split(",").filter(Boolean)); });
      }
    } else if (ASSIGNMENT.test(path)) {
      // Not live (or not this volunteer's): never keep the address.
      work = caches.open(PAGES).then(function (c) { return c.delete(path); });
    }
    if (work) event.waitUntil(work.catch(function () {}));
    return res;
  }, function () {
    return kept(path).then(function (copy) {
      if (copy) return copy;
      return caches.match("/offline").then(function (off) {
        return off || new Response("offline", { status: 503, headers: { "content-type": "text/plain" } });
      });
    });
  });
}

// A check-in or check-out form posted without network: queue it with the
// time it happened and show the assignment page again.
function check(event, orderId, action) {
  return fetch(event.request).catch(function () {
    return self.HomefrontQueue.add(orderId, action).then(function () {
      if (self.registration.sync) self.registration.sync.register("homefront-queue").catch(function () {});
      return Response.redirect("/assignments/" + orderId, 303);
    });
  });
}

self.addEventListener("fetch", function (event) {
  var req = event.request;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  var path = url.pathname;
  if (req.method === "POST") {
    var m = path.match(CHECK);
    if (m) event.respondWith(check(event, m[1], m[2]));
    return;
  }
  if (req.method !== "GET") return;
  if (path.indexOf("/assets/") === 0) {
    event.respondWith(caches.match(req, { ignoreSearch: true }).then(function (hit) {
      return hit || fetch(req);
    }));
    return;
  }
  if (path.indexOf("/api/") === 0 || path.indexOf("/live/") === 0) return;
  if (req.mode === "navigate") event.respondWith(page(event));
});

self.addEventListener("message", function (event) {
  var data = event.data || {};
  var reply = function (v) { if (event.ports && event.ports[0]) event.ports[0].postMessage(v); };
  if (data.type === "clear") {
    // Signing out: nothing of this person stays on the phone.
    event.waitUntil(clearPages().then(function () { reply({ cleared: true }); }));
  } else if (data.type === "flush") {
    event.waitUntil(self.HomefrontQueue.flush().then(reply, function () { reply({ sent: 0 }); }));
  }
});

self.addEventListener("sync", function (event) {
  if (event.tag !== "homefront-queue") return;
  event.waitUntil(self.HomefrontQueue.flush().then(function (r) {
    if (r && r.left) throw new Error("retry later");
  }));
});

self.addEventListener("push", function (event) {
  var msg = {};
  try { msg = event.data ? event.data.json() : {}; } catch (e) { msg = {}; }
  var title = msg.title || "Homefront";
  var work = [self.registration.showNotification(title, {
    body: msg.body || "",
    tag: msg.tag || undefined,
    renotify: Boolean(msg.tag),
    requireInteraction: msg.kind === "offer_made",
    icon: "/assets/icon-192.png",
    badge: "/assets/icon-192.png",
    vibrate: msg.kind === "offer_made" ? [300, 100, 300, 100, 300] : [200],
    data: { url: msg.url || "/", kind: msg.kind, order_id: msg.order_id },
  })];
  if (msg.kind === "order_state" && msg.order_id) {
    // A cancelled or given-up order: its address leaves the phone.
    work.push(caches.open(PAGES).then(function (c) { return c.delete("/assignments/" + msg.order_id); }));
  }
  event.waitUntil(Promise.all(work));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin).href;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (wins) {
    for (var i = 0; i < wins.length; i++) {
      var w = wins[i];
      if (new URL(w.url).origin === self.location.origin && "focus" in w) {
        return (w.url === target ? Promise.resolve(w) : w.navigate(target)).then(function (c) {
          return (c || w).focus();
        });
      }
    }
    return self.clients.openWindow(target);
  }));
});
