// The console works without this file: it keeps expiry countdowns ticking and reloads a
// live run's page every few seconds, pausing while a form field is in use.
(function () {
  "use strict";
  function left(seconds) {
    if (seconds <= 0) return "expired";
    var s = Math.floor(seconds);
    if (s < 60) return "in " + s + " s";
    if (s < 3600) return "in " + Math.floor(s / 60) + " min " + (s % 60) + " s";
    return "in " + Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var remaining = parseFloat(el.getAttribute("data-expires")) - now;
      el.textContent = left(remaining);
      el.classList.toggle("soon", remaining > 0 && remaining < 300);
      el.classList.toggle("gone", remaining <= 0);
    });
  }
  function busy() {
    return Array.prototype.some.call(
      document.querySelectorAll("input:not([type=hidden]), textarea, select"),
      function (el) { return el === document.activeElement || (el.tagName !== "SELECT" && el.value); }
    );
  }
  function autoRefresh(seconds) {
    var label = document.getElementById("live");
    setInterval(function () {
      if (busy()) {
        if (label) label.textContent = "refresh paused while you type";
      } else if (!document.hidden) {
        window.location.reload();
      }
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    var refresh = parseFloat(document.body.getAttribute("data-refresh") || "0");
    if (refresh > 0) autoRefresh(refresh);
  });
})();
