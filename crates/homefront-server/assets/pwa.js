// Homefront as an installed app: the service worker, the "offline copy"
// note, check-in/out queued without network, signing out that leaves
// nothing behind, and the alerts switch on the volunteer page. Texts come
// from the page (data-* attributes in the viewer's language).
(function () {
  "use strict";
  var body = document.body;
  var Q = window.HomefrontQueue;
  var sw = "serviceWorker" in navigator && window.isSecureContext;

  function $(sel) { return document.querySelector(sel); }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function stamp(ms) {
    var d = new Date(Number(ms));
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function fill(text, vars) {
    return String(text || "").replace(/\{(\w+)\}/g, function (_, k) { return vars[k] != null ? vars[k] : ""; });
  }
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  // Resolves with the service worker's answer, or after `ms` regardless.
  function ask(msg, ms) {
    if (!sw || !navigator.serviceWorker.controller) return Promise.resolve(null);
    return new Promise(function (resolve) {
      var ch = new MessageChannel();
      var t = setTimeout(function () { resolve(null); }, ms);
      ch.port1.onmessage = function (e) { clearTimeout(t); resolve(e.data); };
      navigator.serviceWorker.controller.postMessage(msg, [ch.port2]);
    });
  }

  if (sw) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});

  // A page the service worker answered from its copy: say when it was fetched.
  var note = $("#offline-note");
  var copyAt = body.getAttribute("data-offline-copy");
  if (note && copyAt) {
    note.textContent = fill(note.getAttribute("data-text"), { time: stamp(copyAt) });
    note.hidden = false;
    body.classList.add("offline-copy");
  }

  // Check-in and check-out without network: queued with the time.
  var assignment = $("#assignment");
  var queued = $("#queued");
  function showQueue() {
    if (!assignment || !queued || !Q) return Promise.resolve();
    var order = Number(assignment.getAttribute("data-order"));
    return Promise.all([Q.pending(), Q.takeResults()]).then(function (r) {
      var pending = r[0].filter(function (i) { return i.order_id === order; });
      var results = r[1];
      var lines = [];
      pending.forEach(function (i) {
        lines.push(fill(queued.getAttribute("data-" + i.action), { time: stamp(i.recorded_at) }));
      });
      results.filter(function (i) { return !i.ok; }).forEach(function (i) {
        var reason = queued.getAttribute("data-reason-" + i.code) || queued.getAttribute("data-reason-other");
        lines.push(fill(queued.getAttribute("data-refused"), { time: stamp(i.recorded_at), reason: reason }));
      });
      queued.textContent = "";
      lines.forEach(function (l) {
        var p = document.createElement("p");
        p.textContent = l;
        queued.appendChild(p);
      });
      queued.hidden = lines.length === 0;
      var inQueued = pending.some(function (i) { return i.action === "check-in"; });
      var outQueued = pending.some(function (i) { return i.action === "check-out"; });
      var fin = $("#check-in-form");
      var fout = $("#check-out-form");
      if (fin && (inQueued || outQueued)) fin.hidden = true;
      if (fout && inQueued && !outQueued) fout.hidden = false;
      if (fout && outQueued) fout.hidden = true;
    });
  }

  function flush() {
    if (!Q || !navigator.onLine) return Promise.resolve();
    return Q.flush().then(function (r) {
      if (r && r.blocked === "signed_out" && queued) {
        queued.hidden = false;
        var p = document.createElement("p");
        p.textContent = queued.getAttribute("data-signed-out");
        queued.appendChild(p);
        return;
      }
      return showQueue().then(function () {
        // What the server now says beats what the phone recorded.
        if (r && r.sent && assignment) window.location.reload();
      });
    }).catch(function () {});
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var action = form.getAttribute("data-queue");
    if (action && assignment && Q && !navigator.onLine) {
      e.preventDefault();
      Q.add(assignment.getAttribute("data-order"), action).then(function () {
        if (sw) navigator.serviceWorker.ready.then(function (reg) {
          if (reg.sync) reg.sync.register("homefront-queue").catch(function () {});
        });
        return showQueue();
      });
      return;
    }
    var to = form.getAttribute("action");
    if (to === "/logout" || to === "/account/logout-all") {
      if (form.getAttribute("data-cleaned")) return;
      e.preventDefault();
      form.setAttribute("data-cleaned", "1");
      // Send what is queued, then leave nothing of this person behind.
      var steps = (Q && navigator.onLine ? Q.flush().catch(function () {}) : Promise.resolve())
        .then(function () { return ask({ type: "clear" }, 1500); })
        .then(function () { return turnOffHere(); })
        .catch(function () {});
      var timeout = new Promise(function (resolve) { setTimeout(resolve, 3000); });
      Promise.race([steps, timeout]).then(function () { form.submit(); });
      return;
    }
    if (!navigator.onLine && body.classList.contains("offline-copy") && note) {
      e.preventDefault();
      note.textContent = note.getAttribute("data-needs-network");
    }
  });

  window.addEventListener("online", flush);
  showQueue().then(flush);

  // Alerts (Web Push) on the volunteer page.
  var card = $("#alerts");
  var stateEl = $("#alerts-state");
  var onBtn = $("#alerts-on");
  var offBtn = $("#alerts-off");
  var USER = "homefront-push-user";

  function say(key, on) {
    if (!card) return;
    stateEl.textContent = card.getAttribute("data-" + key);
    card.setAttribute("data-alerts", key);
    onBtn.hidden = on !== false;
    offBtn.hidden = on !== true;
    if (key === "unsupported" || key === "blocked") { onBtn.hidden = true; offBtn.hidden = true; }
  }

  function keyBytes(b64) {
    var s = b64.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var raw = atob(s);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function label() {
    var ua = navigator.userAgent;
    var browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" :
      /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
    var os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" :
      /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
    return os ? browser + " · " + os : browser;
  }

  function api(method, path, data) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf() },
      body: data ? JSON.stringify(data) : undefined,
    }).then(function (res) {
      if (!res.ok) throw new Error(method + " " + path + ": " + res.status);
      return res.status === 204 ? null : res.json();
    });
  }

  function save(sub) {
    var json = sub.toJSON();
    json.label = label();
    return api("POST", "/api/v1/push/subscriptions", json).then(function (saved) {
      try { localStorage.setItem(USER, card.getAttribute("data-user")); } catch (e) { /* private mode */ }
      return saved;
    });
  }

  // This browser's subscription and the server's record of it.
  function current() {
    return navigator.serviceWorker.ready.then(function (reg) {
      return reg.pushManager.getSubscription().then(function (sub) {
        if (!sub) return { reg: reg, sub: null, mine: null };
        return api("GET", "/api/v1/push/subscriptions").then(function (list) {
          var mine = list.filter(function (s) { return s.endpoint === sub.endpoint; })[0] || null;
          return { reg: reg, sub: sub, mine: mine };
        });
      });
    });
  }

  // Signing out: this phone's alerts end with the session.
  function turnOffHere() {
    if (!sw || !("PushManager" in window)) return Promise.resolve();
    try { localStorage.removeItem(USER); } catch (e) { /* private mode */ }
    return navigator.serviceWorker.getRegistration().then(function (reg) {
      return reg && reg.pushManager.getSubscription().then(function (sub) {
        return sub && sub.unsubscribe();
      });
    });
  }

  function refresh() {
    return current().then(function (c) {
      var owner = null;
      try { owner = localStorage.getItem(USER); } catch (e) { owner = null; }
      if (c.sub && c.mine && c.mine.active) return say("on", true);
      if (c.sub && owner === card.getAttribute("data-user") && Notification.permission === "granted") {
        // Signed in again on a phone that had alerts on: they go on again.
        return save(c.sub).then(function () { say("on", true); });
      }
      say("off", false);
    });
  }

  if (card) {
    if (!sw || !("PushManager" in window) || !("Notification" in window)) {
      say("unsupported");
    } else if (Notification.permission === "denied") {
      say("blocked");
    } else {
      say("checking");
      refresh().catch(function () { say("off", false); });
    }
    onBtn.addEventListener("click", function () {
      onBtn.disabled = true;
      Notification.requestPermission().then(function (perm) {
        if (perm !== "granted") return say(perm === "denied" ? "blocked" : "off", false);
        return navigator.serviceWorker.ready.then(function (reg) {
          return reg.pushManager.getSubscription().then(function (old) {
            return old || reg.pushManager.subscribe({
              userVisibleOnly: true,
              applicationServerKey: keyBytes(card.getAttribute("data-key")),
            });
          });
        }).then(save).then(function () { say("on", true); });
      }).catch(function () { say("error", false); })
        .then(function () { onBtn.disabled = false; });
    });
    offBtn.addEventListener("click", function () {
      offBtn.disabled = true;
      current().then(function (c) {
        var gone = c.mine ? api("DELETE", "/api/v1/push/subscriptions/" + c.mine.id) : Promise.resolve();
        return gone.then(function () { return c.sub && c.sub.unsubscribe(); });
      }).then(function () {
        try { localStorage.removeItem(USER); } catch (e) { /* private mode */ }
        say("off", false);
      }).catch(function () { say("error", true); })
        .then(function () { offBtn.disabled = false; });
    });
  }
})();
