// The live wallboard: snapshot on connect, then wallboard.update / sla.alert pushes; colour
// thresholds from the board's own target; the service-level chart reloads at most every 30 s.
// No inline script (CSP script-src 'self'); all text goes through textContent, never HTML.
(function () {
  "use strict";
  var queues = {};
  var lastEventId = 0;
  var target = { service_level: 0.8, threshold_seconds: 20 };
  var status = document.getElementById("wb-status");
  var chart = document.getElementById("wb-chart");
  var chartAt = 0, chartTimer = null;

  function pct(x) { return x === null || x === undefined ? "–" : (x * 100).toFixed(1) + " %"; }
  function num(x) { return x === null || x === undefined ? "–" : String(Math.round(x * 10) / 10); }
  // ok / warn / bad: service level against the target (warn within 10 points below it)
  function slClass(x) {
    if (x === null || x === undefined) { return ""; }
    return x >= target.service_level ? "wb-ok" : x >= target.service_level - 0.1 ? "wb-warn" : "wb-bad";
  }
  function waitClass(s) {
    if (s === null || s === undefined) { return ""; }
    return s > target.threshold_seconds ? "wb-bad" : s > target.threshold_seconds / 2 ? "wb-warn" : "wb-ok";
  }
  function rateClass(x) { return x === null || x === undefined ? "" : x > 0.1 ? "wb-bad" : x > 0.05 ? "wb-warn" : "wb-ok"; }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
  }
  function tile(metric, text, cls) {
    var t = document.querySelector('.wb-tile[data-metric="' + metric + '"]');
    if (!t) { return; }
    t.querySelector(".wb-value").textContent = text;
    t.className = "wb-tile " + (cls || "");
  }

  function render() {
    var body = document.getElementById("wb-queues");
    body.textContent = "";
    Object.keys(queues).map(function (k) { return queues[k]; })
      .sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : 0; })
      .forEach(function (q) {
        var row = document.createElement("tr");
        var sl = q.service_level || {};
        row.setAttribute("data-queue", q.name);
        cell(row, q.name);
        cell(row, String(q.waiting));
        cell(row, num(q.longest_wait_seconds), waitClass(q.longest_wait_seconds));
        cell(row, pct(sl.today), slClass(sl.today));
        cell(row, pct(sl.last_15m), slClass(sl.last_15m));
        cell(row, pct(sl.last_60m), slClass(sl.last_60m));
        cell(row, num(q.asa_seconds));
        cell(row, pct(q.abandon_rate), rateClass(q.abandon_rate));
        cell(row, String(q.breaches_today), q.breaches_today > 0 ? "wb-bad" : "");
        cell(row, q.staffing && q.staffing.agents_needed !== null ? String(q.staffing.agents_needed) : "–");
        body.appendChild(row);
      });
  }

  function totals(t, byPresence) {
    if (t) {
      var sl = t.service_level || {};
      tile("waiting", String(t.waiting), t.waiting > 0 ? "wb-warn" : "wb-ok");
      tile("longest", num(t.longest_wait_seconds), waitClass(t.longest_wait_seconds));
      tile("sl_today", pct(sl.today), slClass(sl.today));
      tile("sl_15", pct(sl.last_15m), slClass(sl.last_15m));
      tile("answered", String(t.answered_today));
      tile("abandoned", String(t.abandoned_today), rateClass(t.abandon_rate));
      tile("asa", num(t.asa_seconds), waitClass(t.asa_seconds));
      tile("breaches", String(t.breaches_today), t.breaches_today > 0 ? "wb-bad" : "wb-ok");
      var need = t.staffing ? t.staffing.agents_needed : null;
      tile("needed", need === null || need === undefined ? "–" : String(need));
    }
    if (byPresence) {
      var free = byPresence.available || 0;
      var need2 = t && t.staffing ? t.staffing.agents_needed : null;
      tile("available", String(free), need2 !== null && need2 !== undefined && free < need2 ? "wb-bad" : "");
    }
  }

  function agents(byPresence) {
    var list = document.getElementById("wb-agents");
    list.textContent = "";
    Object.keys(byPresence || {}).sort().forEach(function (p) {
      var li = document.createElement("li");
      li.textContent = p + ": " + byPresence[p];
      list.appendChild(li);
    });
  }

  function reloadChart() {
    if (!chart) { return; }
    var wait = 30000 - (Date.now() - chartAt);
    if (chartTimer) { return; }
    chartTimer = setTimeout(function () {
      chartTimer = null;
      chartAt = Date.now();
      chart.src = chart.dataset.src + "&v=" + chartAt;
    }, Math.max(0, wait));
  }

  function apply(data, replace) {
    if (replace) { queues = {}; }
    (data.queues || []).forEach(function (q) { queues[q.queue_id] = q; });
    if (data.settings) {
      target = data.settings.target || target;
      document.getElementById("wb-variant").textContent =
        "SL: " + data.settings.formula + " (" + data.settings.variant + ")";
    }
    var byPresence = data.agents ? data.agents.by_presence : null;
    if (byPresence) { agents(byPresence); }
    totals(data.totals, byPresence);
    lastEventId = Math.max(lastEventId, data.last_event_id || 0);
    render();
  }

  function setStatus(live) {
    status.textContent = live ? status.dataset.live : status.dataset.offline;
    status.className = "wb-status " + (live ? "live" : "offline");
  }

  if (typeof io !== "function") { setStatus(false); return; }
  var socket = io("/wallboard", { transports: ["websocket"], withCredentials: true });
  socket.on("connect", function () { setStatus(true); });
  socket.on("disconnect", function () { setStatus(false); });
  socket.on("connect_error", function () { setStatus(false); });
  socket.on("wallboard.snapshot", function (data) { lastEventId = 0; apply(data, true); chartAt = Date.now(); });
  socket.on("wallboard.update", function (data) {
    if ((data.last_event_id || 0) >= lastEventId) { apply(data, false); reloadChart(); }
  });
  socket.on("sla.alert", function (alert) {
    var list = document.getElementById("wb-alerts");
    var li = document.createElement("li");
    li.textContent = alert.type + " #" + alert.ticket_id + " " + alert.metric + " (" + alert.due + ")";
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 20) { list.removeChild(list.lastChild); }
  });
}());
