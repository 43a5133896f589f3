// Live inbox: the server says when the team's alerts changed (server-sent events); the rows are fetched again.
// Without this script the inbox still works: reload it.
(function () {
  "use strict";
  var table = document.getElementById("inbox");
  if (!table || !window.EventSource) { return; }
  var rows = document.getElementById("inbox-rows");
  var live = document.getElementById("live");
  var busy = false;
  function refresh(announce) {
    if (busy) { return; }
    busy = true;
    fetch(table.getAttribute("data-rows"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/console/sign-in"); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          rows.innerHTML = html;
          if (announce) { live.textContent = " · updated " + new Date().toLocaleTimeString(); }
        }
      })
      .finally(function () { busy = false; });
  }
  var source = new EventSource("/console/events");
  source.addEventListener("inbox", function () { refresh(true); });
  source.addEventListener("open", function () { table.setAttribute("data-live", "1"); });
  window.setInterval(function () { refresh(false); }, 30000);  // ages and deadlines move on
})();
