// The chat widget. Served inside a closure with the Socket.IO client as `io` (see
// channels/chat/__init__.py), so one <script src=".../chat/widget.js"> is all a site needs.
// Everything shown goes through textContent (never HTML); the UI lives in a shadow root.
"use strict";
var script = document.currentScript;
if (!script || window.__ccChatLoaded) { return; }
window.__ccChatLoaded = true;
var ORIGIN = new URL(script.src, location.href).origin;
var data = script.dataset || {};
var lang = /^zh(-|$)/i.test(data.lang || navigator.language || "") ? "zh-CN" : "en";
var TEXT = {
  "en": {
    open: "Chat with us", title: "Chat with us", close: "Close", end: "End chat",
    name: "Your name", email: "Email (optional)", emailRequired: "Email", message: "How can we help?",
    start: "Start chat", send: "Send", attach: "Attach a file", typing: "{name} is typing…",
    offlineTitle: "We are offline right now", closedTitle: "We are closed right now",
    offlineLead: "Leave a message and we will answer by email.", offlineSend: "Send message",
    offlineThanks: "Thank you! We will answer by email.", connecting: "Connecting to an agent…",
    position: "You are number {n} in line.", wait: "Expected wait: about {m} min.",
    waitSoon: "Expected wait: less than a minute.", joined: "{name} joined the chat.",
    ended: "This chat has ended.", newChat: "Start a new chat", transcript: "Email transcript",
    transcriptSent: "The transcript is on its way to {email}.", transcriptSend: "Send",
    you: "You", agent: "Agent", sending: "Sending…", read: "Read", failed: "Not sent: {why}",
    tooBig: "The file is too large.", badType: "This file type is not allowed.",
    reconnecting: "Reconnecting…", online: "Online", tooMany: "Too many messages; wait a moment."
  },
  "zh-CN": {
    open: "在线咨询", title: "在线咨询", close: "关闭", end: "结束对话",
    name: "您的姓名", email: "电子邮件（可选）", emailRequired: "电子邮件", message: "请问有什么可以帮您？",
    start: "开始对话", send: "发送", attach: "添加文件", typing: "{name}正在输入…",
    offlineTitle: "我们暂时不在线", closedTitle: "现在不是营业时间",
    offlineLead: "请留言，我们会通过电子邮件回复您。", offlineSend: "发送留言",
    offlineThanks: "谢谢！我们会通过电子邮件回复您。", connecting: "正在为您接通客服…",
    position: "您目前排在第 {n} 位。", wait: "预计等待约 {m} 分钟。",
    waitSoon: "预计等待不到一分钟。", joined: "{name}已加入对话。",
    ended: "对话已结束。", newChat: "开始新的对话", transcript: "通过邮件发送聊天记录",
    transcriptSent: "聊天记录将发送到 {email}。", transcriptSend: "发送",
    you: "您", agent: "客服", sending: "发送中…", read: "已读", failed: "未发送：{why}",
    tooBig: "文件太大。", badType: "不允许此类文件。",
    reconnecting: "正在重新连接…", online: "在线", tooMany: "消息太多，请稍候。"
  }
}[lang];

function fmt(s, vars) {
  return s.replace(/\{(\w+)\}/g, function (_, k) { return vars[k] === undefined ? "" : String(vars[k]); });
}
function el(tag, attrs, text) {
  var e = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (k === "class") { e.className = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
  });
  if (text !== undefined && text !== null) { e.textContent = text; }
  return e;
}
function newId() {
  var a = new Uint8Array(12);
  (window.crypto || window.msCrypto).getRandomValues(a);
  return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
}

var STORE = "cc-chat:" + ORIGIN;
function load() { try { return JSON.parse(localStorage.getItem(STORE) || "{}"); } catch (e) { return {}; } }
function save() {
  try { localStorage.setItem(STORE, JSON.stringify({ token: state.token, verified: state.verified, name: state.name, email: state.email, outbox: state.outbox })); } catch (e) { /* private mode */ }
}
var saved = load();
var identity = data.customerId && data.customerHash ? { customer_id: data.customerId, hash: data.customerHash } : null;
if (!identity && saved.verified) { saved = {}; }  // the site signed its customer out: forget them
var state = {
  token: saved.token || null, verified: !!saved.verified, name: saved.name || data.name || "",
  email: saved.email || data.email || "", outbox: saved.outbox || [], lastId: 0,
  ticket: null, status: { online: true }, messages: {}, byClient: {}, agentRead: 0,
  limits: { attachment_max_bytes: 2097152, attachment_types: [] }, view: null, flushing: false,
  agentName: null, welcomed: false
};

// -- the DOM ------------------------------------------------------------------------------------
var host = el("div", { id: "cc-chat-host" });
var root = host.attachShadow({ mode: "open" });
root.appendChild(el("link", { rel: "stylesheet", href: ORIGIN + "/chat/widget.css" }));
var launcher = el("button", { class: "cc-launcher", type: "button", "data-cc": "launcher" }, TEXT.open);
var panel = el("section", { class: "cc-panel", "data-cc": "panel", lang: lang, "aria-label": TEXT.title });
panel.hidden = true;
var head = el("header", { class: "cc-head" });
var title = el("strong", {}, TEXT.title);
var conn = el("span", { class: "cc-conn", "data-cc": "conn" }, "");
var endBtn = el("button", { type: "button", class: "cc-end", "data-cc": "end" }, TEXT.end);
var closeBtn = el("button", { type: "button", class: "cc-close", "aria-label": TEXT.close }, "×");
head.append(title, conn, endBtn, closeBtn);
var bodyEl = el("div", { class: "cc-body" });
panel.append(head, bodyEl);
root.append(launcher, panel);

function field(label, input) { var l = el("label", {}, label); l.appendChild(input); return l; }

// pre-chat and offline forms
function form(kind) {
  var f = el("form", { class: "cc-form", "data-cc": kind + "-form" });
  var name = el("input", { name: "name", required: "", maxlength: "100", autocomplete: "name" });
  name.value = state.name;
  var email = el("input", { name: "email", type: "email", maxlength: "254", autocomplete: "email" });
  if (kind === "offline") { email.setAttribute("required", ""); }
  email.value = state.email;
  var msg = el("textarea", { name: "body", required: "", maxlength: "5000", rows: "3" });
  var err = el("p", { class: "cc-error", "data-cc": kind + "-error" });
  var submit = el("button", { type: "submit" }, kind === "offline" ? TEXT.offlineSend : TEXT.start);
  f.append(field(TEXT.name, name), field(kind === "offline" ? TEXT.emailRequired : TEXT.email, email),
           field(TEXT.message, msg), err, submit);
  f.addEventListener("submit", function (ev) {
    ev.preventDefault();
    state.name = name.value.trim(); state.email = email.value.trim(); save();
    var item = { kind: kind === "offline" ? "offline" : "start", client_id: newId(), body: msg.value,
                 name: state.name, email: state.email || null, lang: lang };
    if (kind === "offline") {
      submit.disabled = true;
      request("offline", { client_id: item.client_id, body: item.body, name: item.name, email: item.email, lang: lang }).then(function (ack) {
        submit.disabled = false;
        if (ack.ok) { show("offline-done"); } else { err.textContent = describe(ack); }
      });
      return;
    }
    enqueue(item);
    show("chat");
  });
  return f;
}
var prechat = el("div", { class: "cc-view", "data-cc": "prechat" });
prechat.appendChild(form("start"));
var offline = el("div", { class: "cc-view", "data-cc": "offline" });
var offlineTitle = el("h2", {}, TEXT.offlineTitle);
offline.append(offlineTitle, el("p", {}, TEXT.offlineLead), form("offline"));
var offlineDone = el("div", { class: "cc-view", "data-cc": "offline-done" });
offlineDone.appendChild(el("p", { class: "cc-notice" }, TEXT.offlineThanks));

// the conversation
var chat = el("div", { class: "cc-view cc-chat", "data-cc": "chat" });
var list = el("ol", { class: "cc-messages", "data-cc": "messages", "aria-live": "polite" });
var queueLine = el("p", { class: "cc-queue", "data-cc": "queue" });
var typingLine = el("p", { class: "cc-typing", "data-cc": "typing" });
var endedBox = el("div", { class: "cc-ended", "data-cc": "ended" });
endedBox.hidden = true;
var newChat = el("button", { type: "button", "data-cc": "new-chat" }, TEXT.newChat);
endedBox.append(el("p", {}, TEXT.ended), newChat);
var composer = el("form", { class: "cc-composer", "data-cc": "composer" });
var input = el("textarea", { rows: "2", maxlength: "5000", "data-cc": "input", "aria-label": TEXT.message });
var sendBtn = el("button", { type: "submit", "data-cc": "send" }, TEXT.send);
var file = el("input", { type: "file", "data-cc": "file", "aria-label": TEXT.attach });
composer.append(input, sendBtn, file);
var tools = el("div", { class: "cc-tools" });
var transcriptBtn = el("button", { type: "button", "data-cc": "transcript" }, TEXT.transcript);
var transcriptForm = el("form", { class: "cc-transcript", "data-cc": "transcript-form" });
var transcriptEmail = el("input", { type: "email", required: "", maxlength: "254", "aria-label": TEXT.emailRequired });
transcriptForm.append(transcriptEmail, el("button", { type: "submit" }, TEXT.transcriptSend));
transcriptForm.hidden = true;
var toolNote = el("p", { class: "cc-note", "data-cc": "note" });
tools.append(transcriptBtn, transcriptForm, toolNote);
chat.append(list, queueLine, typingLine, endedBox, composer, tools);
bodyEl.append(prechat, offline, offlineDone, chat);

function show(view) {
  state.view = view;
  [prechat, offline, offlineDone, chat].forEach(function (v) { v.hidden = v.getAttribute("data-cc") !== view; });
  endBtn.hidden = !(view === "chat" && state.ticket);
}

function describe(ack) {
  var e = ack && ack.error ? ack.error : { code: "timeout", message: "no answer" };
  if (e.code === "rate_limited") { return TEXT.tooMany; }
  var fields = e.fields ? Object.keys(e.fields).map(function (k) { return k + ": " + e.fields[k]; }).join("; ") : "";
  return fmt(TEXT.failed, { why: fields || e.message });
}

// -- messages -------------------------------------------------------------------------------------
function time(iso) {
  var d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
}
function bubble(m) {
  var li = el("li", { class: "cc-msg " + (m.from === "me" ? "cc-me" : "cc-agent") });
  li.appendChild(el("span", { class: "cc-who" }, m.from === "me" ? TEXT.you : (m.author || TEXT.agent)));
  if (m.body) { li.appendChild(el("span", { class: "cc-text" }, m.body)); }
  (m.attachments || []).forEach(function (a) {
    li.appendChild(el("span", { class: "cc-file" }, "📎 " + a.filename + " (" + Math.ceil(a.size / 1024) + " KB)"));
  });
  li.appendChild(el("span", { class: "cc-meta" }, m.pending ? TEXT.sending : time(m.created_at)));
  if (m.error) { li.appendChild(el("span", { class: "cc-error" }, m.error)); }
  if (m.id) { li.setAttribute("data-id", String(m.id)); }
  if (m.client_id) { li.setAttribute("data-client-id", m.client_id); }
  return li;
}
function markRead() {
  Array.prototype.forEach.call(list.querySelectorAll("li.cc-me[data-id]"), function (li) {
    var id = Number(li.getAttribute("data-id"));
    var meta = li.querySelector(".cc-meta");
    if (meta && id <= state.agentRead && !li.classList.contains("cc-read")) {
      li.classList.add("cc-read");
      meta.textContent = meta.textContent + " · " + TEXT.read;
    }
  });
}
// Add or replace a message; stored ones are keyed by id, pending ones by client_id.
function put(m) {
  if (m.id && state.messages[m.id]) { return; }
  var old = m.client_id ? state.byClient[m.client_id] : null;
  var li = bubble(m);
  if (old && old.parentNode) { old.parentNode.replaceChild(li, old); } else { list.appendChild(li); }
  if (m.client_id) { state.byClient[m.client_id] = li; }
  if (m.id) {
    state.messages[m.id] = li;
    state.lastId = Math.max(state.lastId, m.id);
    if (m.from === "agent") { typingLine.textContent = ""; noteRead(m.id); }
  }
  list.scrollTop = list.scrollHeight;
  markRead();
}
var readTimer = null, readUpTo = 0;
function noteRead(id) {
  readUpTo = Math.max(readUpTo, id);
  if (readTimer || panel.hidden || document.hidden) { return; }
  readTimer = setTimeout(function () {
    readTimer = null;
    if (socket.connected && readUpTo > 0) { socket.emit("read", { message_id: readUpTo }); }
  }, 300);
}

// -- the outbox: nothing typed is lost; a resend with the same client_id is stored once --------
function enqueue(item) {
  state.outbox.push(item);
  save();
  if (item.kind !== "offline") {
    put({ client_id: item.client_id, from: "me", body: item.body, pending: true, attachments: item.file ? [{ filename: item.file.filename, size: item.size }] : [] });
  }
  flush();
}
function request(event, payload) {
  return socket.timeout(10000).emitWithAck(event, payload).catch(function () { return { ok: false, error: { code: "timeout", message: "no answer" } }; });
}
function flush() {
  if (state.flushing || !socket.connected || !state.welcomed || !state.outbox.length) { return; }
  state.flushing = true;
  var item = state.outbox[0];
  var payload;
  if (item.kind === "start") {
    payload = { client_id: item.client_id, body: item.body, name: item.name, email: item.email, lang: item.lang };
  } else if (item.kind === "attachment") {
    payload = { client_id: item.client_id, filename: item.file.filename, content_type: item.file.content_type, data: item.file.data };
  } else {
    payload = { client_id: item.client_id, body: item.body };
  }
  var event = item.kind === "start" ? "start" : item.kind === "attachment" ? "attachment" : "message";
  request(event, payload).then(function (ack) {
    state.flushing = false;
    if (!ack.ok && ack.error.code === "timeout") { return; }  // retried after the reconnect
    state.outbox.shift();
    save();
    if (ack.ok) {
      if (ack.message) { put(ack.message); }
      if (ack.ticket_id) { setTicket({ id: ack.ticket_id, status: "new", waiting: !state.agentName }); }
      if (ack.queue) { showQueue(ack.queue); }
    } else {
      var li = state.byClient[item.client_id];
      if (li) { li.appendChild(el("span", { class: "cc-error", "data-cc": "failed" }, describe(ack))); }
    }
    flush();
  });
}

function setTicket(t) {
  state.ticket = t;
  endedBox.hidden = !!t || !list.children.length;
  composer.hidden = !t;
  endBtn.hidden = !(t && state.view === "chat");
  if (!t) { queueLine.textContent = ""; }
}
function showQueue(q) {
  if (!q || !state.ticket || q.ticket_id !== state.ticket.id || !state.ticket.waiting) { queueLine.textContent = ""; return; }
  if (q.state === "connecting") { queueLine.textContent = TEXT.connecting; return; }
  var text = fmt(TEXT.position, { n: q.position });
  if (q.expected_wait_seconds !== null && q.expected_wait_seconds !== undefined) {
    text += " " + (q.expected_wait_seconds < 60 ? TEXT.waitSoon : fmt(TEXT.wait, { m: Math.round(q.expected_wait_seconds / 60) }));
  }
  queueLine.textContent = text;
}
function applyStatus(s) {
  state.status = s || { online: true };
  offlineTitle.textContent = state.status.reason === "closed" ? TEXT.closedTitle : TEXT.offlineTitle;
  if (!state.ticket && state.view !== "offline-done" && !(state.view === "chat" && state.outbox.length)) {
    show(state.status.online ? (list.children.length ? "chat" : "prechat") : "offline");
    if (state.view === "chat") { setTicket(null); }
  }
}

// -- the socket -----------------------------------------------------------------------------------
var socket = io(ORIGIN + "/customer", {
  transports: ["websocket"],
  auth: function (cb) {
    var a = { lang: lang, last_message_id: state.welcomed ? state.lastId : 0 };
    if (identity) { a.identity = identity; } else if (state.token) { a.visitor_token = state.token; }
    cb(a);
  }
});
socket.on("connect", function () { conn.textContent = TEXT.online; conn.className = "cc-conn cc-on"; });
socket.on("disconnect", function () { conn.textContent = TEXT.reconnecting; conn.className = "cc-conn cc-off"; });
socket.on("connect_error", function () { conn.textContent = TEXT.reconnecting; conn.className = "cc-conn cc-off"; });
socket.on("welcome", function (w) {
  state.token = w.visitor_token; state.verified = !!w.verified; save();
  state.limits = w.limits || state.limits;
  state.agentRead = Math.max(state.agentRead, (w.read && w.read.agent) || 0);
  (w.messages || []).forEach(put);
  state.welcomed = true;
  state.agentName = w.ticket && w.ticket.agent;
  setTicket(w.ticket);
  if (w.ticket || list.children.length) { show("chat"); }
  applyStatus(w.status);
  showQueue(w.queue);
  flush();
});
socket.on("message", function (ev) { put(ev.message); if (ev.message.from === "agent" && state.ticket) { state.ticket.waiting = false; queueLine.textContent = ""; } });
socket.on("queue", showQueue);
socket.on("status", applyStatus);
socket.on("agent", function (ev) {
  state.agentName = ev.name;
  if (state.ticket && state.ticket.id === ev.ticket_id) { state.ticket.waiting = false; }
  queueLine.textContent = "";
  list.appendChild(el("li", { class: "cc-event", "data-cc": "joined" }, fmt(TEXT.joined, { name: ev.name })));
});
socket.on("typing", function (ev) {
  typingLine.textContent = ev.typing ? fmt(TEXT.typing, { name: state.agentName || TEXT.agent }) : "";
});
socket.on("read", function (ev) { state.agentRead = Math.max(state.agentRead, ev.message_id); markRead(); });
socket.on("ended", function (ev) {
  if (state.ticket && state.ticket.id === ev.ticket_id) { setTicket(null); endedBox.hidden = false; typingLine.textContent = ""; }
});

// -- user actions -------------------------------------------------------------------------------
launcher.addEventListener("click", function () {
  panel.hidden = false; launcher.hidden = true;
  if (readUpTo) { noteRead(readUpTo); }
});
closeBtn.addEventListener("click", function () { panel.hidden = true; launcher.hidden = false; });
endBtn.addEventListener("click", function () {
  request("leave", {}).then(function (ack) { if (ack.ok) { setTicket(null); endedBox.hidden = false; endBtn.hidden = true; } });
});
newChat.addEventListener("click", function () {
  list.textContent = ""; state.messages = {}; state.byClient = {}; endedBox.hidden = true;
  show(state.status.online ? "prechat" : "offline");
});
composer.addEventListener("submit", function (ev) {
  ev.preventDefault();
  var text = input.value.trim();
  if (!text) { return; }
  input.value = "";
  typingSent = 0; socket.emit("typing", { typing: false });
  enqueue({ kind: "message", client_id: newId(), body: text });
});
input.addEventListener("keydown", function (ev) {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); composer.requestSubmit(); }
});
var typingSent = 0, typingStop = null;
input.addEventListener("input", function () {
  var now = Date.now();
  if (now - typingSent > 2000 && socket.connected && state.ticket) { typingSent = now; socket.emit("typing", { typing: true }); }
  clearTimeout(typingStop);
  typingStop = setTimeout(function () { typingSent = 0; if (socket.connected) { socket.emit("typing", { typing: false }); } }, 3000);
});
file.addEventListener("change", function () {
  var f = file.files && file.files[0];
  file.value = "";
  if (!f) { return; }
  var types = state.limits.attachment_types || [];
  if (types.length && types.indexOf(f.type) < 0) { toolNote.textContent = TEXT.badType; return; }
  if (f.size > state.limits.attachment_max_bytes) { toolNote.textContent = TEXT.tooBig; return; }
  f.arrayBuffer().then(function (buf) {
    // files stay in memory only (not in localStorage): a reload before the upload drops them
    var item = { kind: "attachment", client_id: newId(), size: f.size, file: { filename: f.name, content_type: f.type, data: buf } };
    state.outbox.push(item);
    put({ client_id: item.client_id, from: "me", body: "", pending: true, attachments: [{ filename: f.name, size: f.size }] });
    flush();
  });
});
transcriptBtn.addEventListener("click", function () {
  transcriptForm.hidden = false; transcriptEmail.value = state.email; transcriptEmail.focus();
});
transcriptForm.addEventListener("submit", function (ev) {
  ev.preventDefault();
  var email = transcriptEmail.value.trim();
  request("transcript", { email: email }).then(function (ack) {
    toolNote.textContent = ack.ok ? fmt(TEXT.transcriptSent, { email: email }) : describe(ack);
    if (ack.ok) { transcriptForm.hidden = true; }
  });
});
document.addEventListener("visibilitychange", function () { if (!document.hidden && readUpTo) { noteRead(readUpTo); } });

// save() drops attachments (ArrayBuffers do not serialise); keep only text items across reloads
state.outbox = state.outbox.filter(function (i) { return i.kind !== "attachment"; });
show("prechat");
setTicket(null);
(document.body || document.documentElement).appendChild(host);
