// The console works without this file; it only keeps expiry countdowns ticking.
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
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
  });
})();
