// Vitalgate coordinator pages: queue auto-refresh and one-click acknowledge.
// Pages work without this file (plain forms, a refresh link); it only avoids reloads.
(function () {
  "use strict";
  var table = document.querySelector("table[data-refresh-url]");
  var status = document.getElementById("queue-status");

  function say(text) { if (status) { status.textContent = text; } }

  var REFRESH_FAILED = "Could not refresh; retrying.";

  // force: refresh even while focus is inside the table (after our own acknowledge).
  // focusHref: after replacing the rows, put keyboard focus on the link to this href,
  // so focus is not dropped to <body> when the row it was in is replaced.
  function refresh(force, focusHref) {
    if (!table || (!force && document.hidden)) { return; }
    // Do not replace rows while the user is focused inside the table (keyboard users).
    if (!force && table.contains(document.activeElement) && document.activeElement !== document.body) { return; }
    fetch(table.dataset.refreshUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) {
        if (r.redirected || r.status === 401) { window.location = "/login"; return null; }
        if (!r.ok) { say(REFRESH_FAILED); return null; }
        return r.text();
      })
      .then(function (html) {
        if (html === null || html === undefined) { return; }
        var rows = document.getElementById("queue-rows");
        rows.innerHTML = html;
        if (status && status.textContent === REFRESH_FAILED) { say(""); }
        if (focusHref) {
          var target = rows.querySelector('a[href="' + focusHref + '"]') || document.getElementById("main");
          if (target) { target.focus(); }
        }
      })
      .catch(function () { say(REFRESH_FAILED); });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("js-ack")) { return; }
    ev.preventDefault();
    var button = form.querySelector("button");
    if (button) { button.disabled = true; }
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                         headers: { "X-Requested-With": "fetch" } })
      .then(function (r) {
        if (r.status === 204) {
          say("Acknowledged.");
          refresh(true, form.getAttribute("action").replace(/\/acknowledge$/, ""));
        }
        else { say("Could not acknowledge (" + r.status + ")."); if (button) { button.disabled = false; } }
      })
      .catch(function () { say("Could not acknowledge."); if (button) { button.disabled = false; } });
  });

  if (table) {
    var seconds = parseInt(table.dataset.refreshSeconds || "10", 10);
    window.setInterval(function () { refresh(false, null); }, Math.max(seconds, 5) * 1000);
  }

  // Call timer on the call-prep page: the browser counts, the server stores minutes.
  var timer = document.querySelector("form[data-timer]");
  if (timer) {
    var startBtn = timer.querySelector("[data-timer-start]");
    var stopBtn = timer.querySelector("[data-timer-stop]");
    var clock = timer.querySelector("[data-timer-clock]");
    var started = null, tick = null;
    startBtn.addEventListener("click", function () {
      started = new Date();
      timer.elements.started_at.value = started.toISOString();
      startBtn.disabled = true; stopBtn.disabled = false;
      tick = window.setInterval(function () {
        var s = Math.floor((new Date() - started) / 1000);
        clock.textContent = Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
      }, 1000);
    });
    stopBtn.addEventListener("click", function () {
      if (!started) { return; }
      window.clearInterval(tick);
      timer.elements.minutes.value = Math.max(1, Math.round((new Date() - started) / 60000));
      stopBtn.disabled = true; startBtn.disabled = false;
      timer.elements.minutes.focus();
    });
  }
})();
