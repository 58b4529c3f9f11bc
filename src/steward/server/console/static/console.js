// The console works without this file: it keeps expiry countdowns ticking, reloads a
// live run's page every few seconds (pausing while a form field is in use), and gives the
// approval queue its keyboard shortcuts.
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
  // Approval queue keys: j/k move between cards, a focuses the card's Approve button and
  // r its comment (Enter then decides: a key alone never decides), x ticks it for bulk reject.
  function queueKeys() {
    var cards = Array.prototype.slice.call(document.querySelectorAll("article.approval"));
    if (!cards.length) return;
    var at = -1;
    function go(i) {
      if (at >= 0) cards[at].classList.remove("current");
      at = Math.max(0, Math.min(cards.length - 1, i));
      cards[at].classList.add("current");
      cards[at].focus();
      cards[at].scrollIntoView({ block: "start" });
    }
    document.addEventListener("keydown", function (e) {
      var t = e.target;
      if (e.altKey || e.ctrlKey || e.metaKey) return;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
        // Enter in a card's comment field would submit its first button (Approve): refuse
        if (e.key === "Enter" && t.closest && t.closest("form.decide")) e.preventDefault();
        return;
      }
      var card = at >= 0 ? cards[at] : null;
      if (e.key === "j") go(at + 1);
      else if (e.key === "k") go(at - 1);
      else if (card && e.key === "a") {
        var approve = card.querySelector("button[value=approve]");
        if (approve) approve.focus();
      } else if (card && e.key === "r") {
        var comment = card.querySelector("form.decide input[name=comment]");
        if (comment) comment.focus();
      } else if (card && e.key === "x") {
        var pick = card.querySelector("input.pick");
        if (pick) pick.checked = !pick.checked;
      } else return;
      e.preventDefault();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    queueKeys();
    tick();
    setInterval(tick, 1000);
    var refresh = parseFloat(document.body.getAttribute("data-refresh") || "0");
    if (refresh > 0) autoRefresh(refresh);
  });
})();
