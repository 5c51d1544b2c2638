// Homefront pages: countdowns for offers, and a question before an action
// that cannot be undone. Everything else works without script; htmx
// (vendored) only adds live updates over server-sent events.
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
      var text = left > 0
        ? Math.floor(s / 60) + ":" + pad(s % 60)
        : el.getAttribute("data-expired-text") || "0:00";
      if (el.textContent !== text) el.textContent = text;
    }
  }
  tick();
  setInterval(tick, 1000);
  // A live update swaps in new offers: fill their countdowns at once
  // rather than at the next second's tick, so they never show blank.
  if (window.MutationObserver) {
    new MutationObserver(function (changes) {
      for (var i = 0; i < changes.length; i++) {
        if (changes[i].addedNodes.length) { tick(); return; }
      }
    }).observe(body, { childList: true, subtree: true });
  }

  // Forms marked data-confirm (check-out, cancelling an order, deleting a
  // bot, ending a pairing, ...) ask first. Capturing, so the offline queue
  // and the sign-out clean-up never see a submit that was called off.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (!question) return;
    if (!window.confirm(question)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);

  // "Select every matching" boxes: a box with data-select-all="NAME"
  // ticks or clears every checkbox named NAME on the page.
  document.addEventListener("change", function (e) {
    var box = e.target;
    var name = box && box.getAttribute && box.getAttribute("data-select-all");
    if (!name) return;
    var boxes = document.querySelectorAll('input[type="checkbox"][name="' + name + '"]');
    for (var i = 0; i < boxes.length; i++) boxes[i].checked = box.checked;
  });
})();
