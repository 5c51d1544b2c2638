// Homefront pages: countdowns for offers. Everything else works without
// script; htmx (vendored) only adds live updates over server-sent events.
(function () {
  "use strict";
  var body = document.body;
  var serverNow = Number(body.getAttribute("data-server-now")) || Date.now();
  var offset = serverNow - Date.now();
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var now = Date.now() + offset;
    var els = document.querySelectorAll("[data-deadline]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var left = Math.max(0, Number(el.getAttribute("data-deadline")) - now);
      var s = Math.floor(left / 1000);
      el.textContent = left > 0
        ? Math.floor(s / 60) + ":" + pad(s % 60)
        : el.getAttribute("data-expired-text") || "0:00";
    }
  }
  tick();
  setInterval(tick, 1000);
})();
