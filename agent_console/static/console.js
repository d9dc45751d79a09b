// The agent console: the /agent namespace (snapshot, offers, assignments, live messages) plus
// the REST API (ticket detail, replies on email/SMS, notes, changes, customer 360).
// No inline script (CSP script-src 'self'); every text from the desk goes through textContent.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("console-data").textContent);
  const T = D.text;
  const me = D.user;
  const $ = (id) => document.getElementById(id);
  const fmt = (s, v) => s.replace(/\{(\w+)\}/g, (m, k) => (v[k] === undefined || v[k] === null ? m : String(v[k])));
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") { e.className = v; } else { e.setAttribute(k, v); }
    }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  const LIVE = new Set(["chat", "voice"]);
  const state = {
    tickets: new Map(), details: new Map(), offers: new Map(), current: null, lastEventId: 0,
    offset: 0, agent: { capacity: {}, load: {} }, directory: null, typingUntil: 0, left: new Set(),
    customerRead: new Map(), readSent: new Map(), typingSent: 0,
  };
  const now = () => Date.now() + state.offset;
  const newId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  const describe = (err) => {
    const e = (err && err.error) || { message: String(err) };
    const fields = e.fields ? Object.entries(e.fields).map(([k, v]) => k + ": " + v).join("; ") : "";
    return fmt(T.error, { why: fields ? e.message + " (" + fields + ")" : e.message });
  };

  // -- REST ---------------------------------------------------------------------------------------
  async function api(method, path, body) {
    const resp = await fetch(path, {
      method, credentials: "same-origin",
      headers: { "X-Requested-With": "console", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) { throw data; }
    return data;
  }
  async function loadDetail(id) {
    try {
      const d = await api("GET", "/api/v1/tickets/" + id);
      state.details.set(id, d);
      render();
      return d;
    } catch (e) { return null; }
  }

  // -- the socket -------------------------------------------------------------------------------
  const socket = io("/agent", {
    transports: ["websocket"], withCredentials: true,
    auth: (cb) => cb(state.lastEventId ? { last_event_id: state.lastEventId } : {}),
  });
  const call = (event, payload) => socket.timeout(8000).emitWithAck(event, payload)
    .catch(() => ({ ok: false, error: { code: "timeout", message: "no answer" } }));
  const seen = (ev) => {
    if (ev.event_id !== undefined) { state.lastEventId = Math.max(state.lastEventId, ev.event_id); }
  };
  function setConn(live) { $("conn").textContent = live ? T.live : T.offline; $("conn").className = "conn " + (live ? "on" : "off"); }
  socket.on("connect", () => setConn(true));
  socket.on("disconnect", () => setConn(false));
  socket.on("connect_error", () => setConn(false));
  socket.on("snapshot", (s) => {
    state.offset = Date.parse(s.now) - Date.now() || 0;
    state.lastEventId = Math.max(state.lastEventId, s.last_event_id);
    state.agent = s.agent;
    $("presence").value = s.agent.presence;
    state.offers = new Map(s.offers.map((o) => [o.ticket_id, o]));
    state.tickets = new Map(s.tickets.map((t) => [t.id, t]));
    for (const id of [...state.tickets.keys(), ...state.offers.keys()]) { loadDetail(id); }
    if (state.current && !state.tickets.has(state.current)) { state.current = null; }
    if (!state.current && state.tickets.size) { select(state.tickets.keys().next().value); }
    render();
  });
  socket.on("offer", (o) => { seen(o); state.offers.set(o.ticket_id, o); loadDetail(o.ticket_id); render(); });
  socket.on("offer.ended", (o) => { seen(o); state.offers.delete(o.ticket_id); render(); });
  socket.on("assigned", (ev) => {
    seen(ev);
    state.tickets.set(ev.ticket.id, ev.ticket);
    state.offers.delete(ev.ticket.id);
    loadDetail(ev.ticket.id);
    if (!state.current) { select(ev.ticket.id); }
    render();
  });
  socket.on("unassigned", (ev) => { seen(ev); drop(ev.ticket_id); });
  socket.on("ticket.updated", (ev) => {
    seen(ev);
    if (["solved", "closed"].includes(ev.ticket.status) || ev.ticket.assignee_id !== me.id) { drop(ev.ticket.id); return; }
    state.tickets.set(ev.ticket.id, ev.ticket);
    const d = state.details.get(ev.ticket.id);
    if (d) { Object.assign(d, ev.ticket); }
    render();
  });
  socket.on("presence", (ev) => { seen(ev); $("presence").value = ev.presence; });
  socket.on("message", (ev) => {
    seen(ev);
    const m = ev.message;
    const d = state.details.get(m.ticket_id);
    if (d && !d.messages.some((x) => x.id === m.id)) { d.messages.push({ ...m, attachments: m.attachments || [] }); }
    if (d && m.attachment_ids && m.attachment_ids.length) { loadDetail(m.ticket_id); }  // file names
    if (m.direction === "in" && m.ticket_id === state.current) { state.typingUntil = 0; }
    render();
  });
  socket.on("typing", (ev) => {
    if (ev.ticket_id === state.current) { state.typingUntil = ev.typing ? Date.now() + 6000 : 0; renderTyping(); }
  });
  socket.on("read", (ev) => { seen(ev); state.customerRead.set(ev.ticket_id, ev.message_id); render(); });
  socket.on("customer.left", (ev) => { seen(ev); state.left.add(ev.ticket_id); render(); });

  function drop(id) {
    state.tickets.delete(id);
    if (state.current === id) { state.current = null; select(state.tickets.keys().next().value); }
    render();
  }

  // -- offers -----------------------------------------------------------------------------------
  async function answer(ticketId, accept) {
    const ack = await call(accept ? "accept" : "reject", { ticket_id: ticketId });
    if (!ack.ok) { state.offers.delete(ticketId); render(); flash(describe(ack)); return; }
    state.offers.delete(ticketId);
    if (accept) { state.tickets.set(ack.ticket.id, ack.ticket); loadDetail(ack.ticket.id); select(ack.ticket.id); }
    render();
  }
  function customerName(id) {
    const d = state.details.get(id);
    return d && d.customer ? d.customer.name || "#" + d.customer.id : "";
  }
  function renderOffers() {
    const box = $("offers");
    box.textContent = "";
    for (const o of state.offers.values()) {
      const card = el("div", { class: "offer", "data-testid": "offer", "data-ticket-id": String(o.ticket_id) });
      card.append(el("strong", { class: "offer-name", "data-testid": "offer-customer" }, customerName(o.ticket_id)));
      card.append(el("span", { class: "offer-subject" }, "#" + o.ticket_id + " " + o.ticket.subject));
      card.append(el("span", { class: "chip" }, o.ticket.channel + (o.ticket.language ? " · " + o.ticket.language : "")));
      card.append(el("span", { class: "countdown", "data-expires": o.expires_at, "data-testid": "offer-countdown" }));
      const yes = el("button", { type: "button", class: "accept", "data-testid": "accept" }, T.accept);
      const no = el("button", { type: "button", class: "reject", "data-testid": "reject" }, T.reject);
      yes.addEventListener("click", () => answer(o.ticket_id, true));
      no.addEventListener("click", () => answer(o.ticket_id, false));
      card.append(yes, no);
      box.append(card);
    }
    tick();
  }
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && t === $("body")) { ev.preventDefault(); $("composer").requestSubmit(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || (t && /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) { return; }
    const first = state.offers.values().next().value;
    if (!first) { return; }
    if (ev.key === "a" || ev.key === "A") { ev.preventDefault(); answer(first.ticket_id, true); }
    if (ev.key === "r" || ev.key === "R") { ev.preventDefault(); answer(first.ticket_id, false); }
  });

  // -- SLA clocks ---------------------------------------------------------------------------------
  function slaDue(t) {
    const d = state.details.get(t.id);
    if (["solved", "closed", "pending"].includes(t.status)) { return null; }
    if (LIVE.has(t.channel) && !t.assignee_id && t.answer_due_at) { return t.answer_due_at; }
    if (t.next_response_due_at) { return t.next_response_due_at; }
    const answered = d && d.messages.some((m) => m.direction === "out");
    if (!answered && t.first_response_due_at) { return t.first_response_due_at; }
    return null;
  }
  const span = (ms) => {
    const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
    if (s < 60) { return s + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min " + (s % 60) + " s"; }
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  };
  function slaText(node, t) {
    const due = slaDue(t);
    if (!due) { node.textContent = T.sla_none; node.className = "sla none"; return; }
    const left = Date.parse(due) - now();
    const total = Math.max(1, Date.parse(due) - Date.parse(t.created_at));
    node.textContent = left > 0 ? fmt(T.sla_due, { t: span(left) }) : fmt(T.sla_breached, { t: span(left) });
    node.className = "sla " + (left <= 0 ? "bad" : left < Math.min(60000, total * 0.25) || left < total * 0.2 ? "warn" : "ok");
  }
  function tick() {
    for (const c of document.querySelectorAll(".countdown[data-expires]")) {
      const left = Math.max(0, Math.ceil((Date.parse(c.dataset.expires) - now()) / 1000));
      c.textContent = fmt(T.expires, { s: left });
      c.className = "countdown" + (left <= 5 ? " bad" : "");
    }
    for (const n of document.querySelectorAll("[data-sla-ticket]")) {
      const t = state.tickets.get(Number(n.dataset.slaTicket));
      if (t) { slaText(n, t); }
    }
    renderTyping();
  }
  setInterval(tick, 250);

  // -- the list, the conversation, the customer -------------------------------------------------
  function renderLoad() {
    const load = {};
    for (const t of state.tickets.values()) { if (["new", "open"].includes(t.status)) { load[t.channel] = (load[t.channel] || 0) + 1; } }
    for (const o of state.offers.values()) { load[o.ticket.channel] = (load[o.ticket.channel] || 0) + 1; }
    const cap = state.agent.capacity || {};
    $("load").textContent = T.load + ": " + Object.keys(cap).sort().map((c) => c + " " + (load[c] || 0) + "/" + cap[c]).join(" · ");
  }
  function renderList() {
    const ul = $("tickets");
    ul.textContent = "";
    $("empty").hidden = state.tickets.size > 0;
    for (const t of state.tickets.values()) {
      const li = el("li", { class: t.id === state.current ? "current" : "", "data-testid": "ticket", "data-ticket-id": String(t.id) });
      const b = el("button", { type: "button" });
      b.append(el("span", { class: "chip" }, t.channel), el("strong", {}, customerName(t.id) || "#" + t.id),
               el("span", { class: "subject" }, t.subject), el("span", { "data-sla-ticket": String(t.id) }));
      b.addEventListener("click", () => select(t.id));
      li.append(b);
      ul.append(li);
    }
  }
  function author(m, d) {
    if (m.direction === "in") { return (d.customer && d.customer.name) || T.customer; }
    if (m.direction === "note") { return T.internal + (m.author_user_id === me.id ? " · " + T.you : ""); }
    return m.author_user_id === me.id ? T.you : m.author_user_id ? "#" + m.author_user_id : "";
  }
  function renderConversation() {
    const id = state.current;
    const t = id && state.tickets.get(id);
    const d = id && state.details.get(id);
    $("pick").hidden = !!t;
    $("pane").hidden = !t;
    if (!t) { return; }
    $("subject").textContent = "#" + t.id + " " + t.subject + " — " + fmt(T.via, { channel: t.channel });
    $("sla").dataset.slaTicket = String(t.id);
    $("status").value = t.status === "new" ? "open" : t.status;
    $("priority").value = String(t.priority);
    const list = $("messages");
    list.textContent = "";
    if (!d) { return; }
    const readUpTo = state.customerRead.get(id) || 0;
    let lastIn = 0;
    for (const m of d.messages) {
      const li = el("li", { class: "msg " + m.direction, "data-testid": "message", "data-message-id": String(m.id) });
      li.append(el("span", { class: "who" }, author(m, d)));
      if (m.body_text) { li.append(el("span", { class: "text" }, m.body_text)); }
      for (const a of m.attachments || []) {
        const link = el("a", { href: "/api/v1/tickets/" + id + "/attachments/" + a.id, download: "" }, "📎 " + a.filename);
        li.append(link);
      }
      const meta = new Date(m.created_at).toLocaleTimeString(D.lang === "zh" ? "zh-CN" : "en", { hour: "2-digit", minute: "2-digit" });
      li.append(el("span", { class: "meta" }, meta + (m.direction === "out" && t.channel === "chat" && m.id <= readUpTo ? " · " + T.read : "")));
      list.append(li);
      if (m.direction === "in") { lastIn = Math.max(lastIn, m.id); }
    }
    if (state.left.has(id)) { list.append(el("li", { class: "event", "data-testid": "left" }, T.left)); }
    list.scrollTop = list.scrollHeight;
    if (t.channel === "chat" && lastIn > (state.readSent.get(id) || 0) && !document.hidden) {
      state.readSent.set(id, lastIn);
      call("read", { ticket_id: id, message_id: lastIn });
    }
  }
  function renderTyping() {
    $("typing").textContent = state.typingUntil > Date.now() ? T.typing : "";
  }
  async function renderCustomer() {
    const box = $("customer-body");
    const d = state.current && state.details.get(state.current);
    if (!d || !d.customer) { box.textContent = ""; box.dataset.customer = ""; return; }
    if (box.dataset.customer === String(d.customer.id)) { return; }
    box.dataset.customer = String(d.customer.id);
    box.textContent = "";
    box.append(el("p", { class: "name", "data-testid": "customer-name" }, d.customer.name || "#" + d.customer.id));
    let view;
    try { view = await api("GET", "/api/v1/customers/" + d.customer.id); } catch (e) { return; }
    if (box.dataset.customer !== String(d.customer.id)) { return; }
    box.append(el("h3", {}, T.handles));
    const hs = el("ul", { class: "handles" });
    for (const h of view.handles) { hs.append(el("li", {}, h.kind + ": " + h.value)); }
    box.append(hs, el("h3", {}, T.history));
    const ts = el("ul", { class: "history", "data-testid": "customer-tickets" });
    for (const t of view.tickets) {
      ts.append(el("li", {}, "#" + t.id + " · " + t.channel + " · " + (T[t.status] || t.status) + " · " + t.subject));
    }
    box.append(ts);
  }
  function render() {
    renderOffers(); renderLoad(); renderList(); renderConversation(); renderCustomer(); tick();
  }
  function select(id) {
    if (id === undefined || id === null) { state.current = null; render(); return; }
    state.current = id;
    state.typingUntil = 0;
    if (!state.details.has(id)) { loadDetail(id); }
    render();
  }
  function flash(text) { $("saved").textContent = text; setTimeout(() => { $("saved").textContent = ""; }, 4000); }

  // -- replying, notes, canned responses, changes -----------------------------------------------
  for (const [i, c] of D.canned.entries()) { $("canned").append(el("option", { value: String(i) }, c.title)); }
  $("canned").addEventListener("change", () => {
    const c = D.canned[Number($("canned").value)];
    $("canned").value = "";
    const t = state.current && state.tickets.get(state.current);
    if (!c || !t) { return; }
    const d = state.details.get(t.id);
    const first = (s) => (s || "").trim().split(/\s+/)[0] || "";
    const text = fmt(c.body, { customer_name: first(d && d.customer && d.customer.name), agent_name: first(me.name), ticket_number: t.id });
    const body = $("body");
    body.value = body.value ? body.value + "\n" + text : text;
    body.focus();
  });
  $("composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = state.current && state.tickets.get(state.current);
    const text = $("body").value.trim();
    if (!t || !text) { return; }
    const note = document.querySelector("input[name=mode]:checked").value === "note";
    $("send-error").textContent = "";
    try {
      if (note) {
        await api("POST", "/api/v1/tickets/" + t.id + "/notes", { body: text });
      } else if (t.channel === "chat") {
        const ack = await call("reply", { ticket_id: t.id, body: text, client_id: newId() });
        if (!ack.ok) { throw ack; }
      } else {
        await api("POST", "/api/v1/tickets/" + t.id + "/replies", { body: text });
      }
      $("body").value = "";
    } catch (e) { $("send-error").textContent = describe(e); }
  });
  $("body").addEventListener("input", () => {
    const t = state.current && state.tickets.get(state.current);
    if (t && t.channel === "chat" && Date.now() - state.typingSent > 2000) {
      state.typingSent = Date.now();
      socket.emit("typing", { ticket_id: t.id, typing: true });
    }
  });
  async function change(body) {
    const t = state.current && state.tickets.get(state.current);
    if (!t) { return; }
    try {
      const out = await api("PATCH", "/api/v1/tickets/" + t.id, body);
      if (out.assignee_id !== me.id || ["solved", "closed"].includes(out.status)) { drop(t.id); } else { state.tickets.set(t.id, out); }
      flash(T.saved);
    } catch (e) { flash(describe(e)); }
    render();
  }
  $("status").addEventListener("change", () => change({ status: $("status").value }));
  $("priority").addEventListener("change", () => change({ priority: Number($("priority").value) }));
  $("transfer").addEventListener("change", () => {
    const v = $("transfer").value;
    $("transfer").value = "";
    if (v === "release") { change({ assignee_id: null }); }
    else if (v.startsWith("a:")) { change({ assignee_id: Number(v.slice(2)) }); }
    else if (v.startsWith("q:")) { change({ queue_id: Number(v.slice(2)), assignee_id: null }); }
  });
  api("GET", "/api/v1/console/directory").then((dir) => {
    const sel = $("transfer");
    sel.append(el("option", { value: "release" }, T.release));
    if (!dir.can_transfer) { return; }
    for (const a of dir.agents) { if (a.id !== me.id) { sel.append(el("option", { value: "a:" + a.id }, fmt(T.to_agent, { name: a.name }))); } }
    for (const q of dir.queues) { sel.append(el("option", { value: "q:" + q.id }, fmt(T.to_queue, { name: q.name }))); }
  }).catch(() => {});
  $("presence").addEventListener("change", async () => {
    const ack = await call("presence", { presence: $("presence").value });
    if (!ack.ok) { flash(describe(ack)); }
  });
  $("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "X-Requested-With": "console" } });
    location.href = "/login";
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { renderConversation(); } });
  render();
}());
