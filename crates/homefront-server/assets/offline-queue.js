// Homefront: check-ins and check-outs made without network, kept in
// IndexedDB with the time the phone recorded them and sent when the network
// returns (by the page on `online`, and by the service worker's Background
// Sync where the browser has it). Shared by the pages and the service
// worker (`self.HomefrontQueue`). Items hold an order id, the action and a
// time: nothing personal.
(function (g) {
  "use strict";
  var DB = "homefront-offline";
  var QUEUE = "queue";
  var RESULTS = "results";

  function open() {
    return new Promise(function (resolve, reject) {
      var r = g.indexedDB.open(DB, 1);
      r.onupgradeneeded = function () {
        var db = r.result;
        if (!db.objectStoreNames.contains(QUEUE)) {
          db.createObjectStore(QUEUE, { keyPath: "id", autoIncrement: true });
        }
        if (!db.objectStoreNames.contains(RESULTS)) {
          db.createObjectStore(RESULTS, { keyPath: "id", autoIncrement: true });
        }
      };
      r.onsuccess = function () { resolve(r.result); };
      r.onerror = function () { reject(r.error); };
    });
  }

  // Runs fn(store) in one transaction; resolves with what fn's request gave.
  function run(name, mode, fn) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(name, mode);
        var req = fn(tx.objectStore(name));
        tx.oncomplete = function () { db.close(); resolve(req ? req.result : undefined); };
        tx.onerror = function () { db.close(); reject(tx.error); };
        tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function all(name) {
    return run(name, "readonly", function (s) { return s.getAll(); }).then(function (rows) {
      return (rows || []).sort(function (a, b) { return a.id - b.id; });
    });
  }

  var flushing = null;

  var Q = {
    // Queues `action` ("check-in" or "check-out") of order `orderId`,
    // recorded now.
    add: function (orderId, action) {
      var item = { order_id: Number(orderId), action: action, recorded_at: Date.now() };
      return run(QUEUE, "readwrite", function (s) { return s.add(item); }).then(function (id) {
        item.id = id;
        return item;
      });
    },
    pending: function () { return all(QUEUE); },
    // Outcomes of sent items that the page has not shown yet; read once.
    takeResults: function () {
      return all(RESULTS).then(function (rows) {
        return run(RESULTS, "readwrite", function (s) { return s.clear(); }).then(function () { return rows; });
      });
    },
    // Sends queued items in order. Stops at the first one that cannot be
    // sent now (no network, signed out, server trouble): it and the rest
    // wait. One the server refuses for good (e.g. recorded too long ago) is
    // dropped and its refusal kept for the page to show.
    flush: function () {
      if (flushing) return flushing;
      flushing = Q.pending().then(function (items) {
        if (!items.length) return { sent: 0, left: 0 };
        return g.fetch("/api/v1/auth/me", { credentials: "same-origin", cache: "no-store" })
          .then(function (res) {
            if (!res.ok) return { sent: 0, left: items.length, blocked: res.status === 401 ? "signed_out" : "server" };
            return res.json().then(function (me) { return sendAll(items, me.csrf_token); });
          }, function () { return { sent: 0, left: items.length, blocked: "offline" }; });
      }).finally(function () { flushing = null; });
      return flushing;
    },
    // Forgets everything (a different person signs in on this phone).
    clear: function () {
      return run(QUEUE, "readwrite", function (s) { return s.clear(); }).then(function () {
        return run(RESULTS, "readwrite", function (s) { return s.clear(); });
      });
    },
  };

  function sendAll(items, csrf) {
    var sent = 0;
    function next(i) {
      if (i >= items.length) return Promise.resolve({ sent: sent, left: 0 });
      var it = items[i];
      return g.fetch("/api/v1/orders/" + it.order_id + "/" + it.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({ recorded_at: it.recorded_at }),
      }).then(function (res) {
        if (res.ok) {
          sent += 1;
          return done(it, { ok: true }).then(function () { return next(i + 1); });
        }
        if (res.status === 401 || res.status === 429 || res.status >= 500) {
          return { sent: sent, left: items.length - i, blocked: res.status === 401 ? "signed_out" : "server" };
        }
        return res.json().catch(function () { return {}; }).then(function (err) {
          return done(it, { ok: false, code: err.code || "http_" + res.status }).then(function () { return next(i + 1); });
        });
      }, function () {
        return { sent: sent, left: items.length - i, blocked: "offline" };
      });
    }
    return next(0);
  }

  function done(item, outcome) {
    var row = {
      order_id: item.order_id, action: item.action, recorded_at: item.recorded_at,
      ok: outcome.ok, code: outcome.code || null,
    };
    return run(QUEUE, "readwrite", function (s) { return s.delete(item.id); }).then(function () {
      return run(RESULTS, "readwrite", function (s) { return s.add(row); });
    });
  }

  g.HomefrontQueue = Q;
})(self);
