// The sandbox's inbox: plain DOM, no build. Every text from the sandbox goes in through
// textContent, never innerHTML (template texts and parameters are user input).
"use strict";

const API = "/_sandbox";
const PAGE = 20;
const view = { tab: "inbox", offset: 0, to: "" };
let busy = false;
let again = false;
let faultPostsPending = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

async function call(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.developerMessage || response.statusText);
  return data;
}

const reasons = {};  // rejection reasons being typed, by template id
const shown = {};  // what each tab last rendered, to skip a re-render that changes nothing

function unchanged(tab, data) {
  const text = JSON.stringify(data);
  if (shown[tab] === text) return true;
  shown[tab] = text;
  return false;
}

function time(iso) {
  return iso ? iso.slice(11, 23) : "";
}

function statusBadge(status) {
  return el("span", { class: "status s-" + status.toLowerCase(), "data-status": status }, status);
}

function callbackTable(callbacks) {
  if (!callbacks.length) return el("p", { class: "hint" }, "No callback yet.");
  const rows = callbacks.map((c) =>
    el("tr", { class: c.ok ? "ok" : "bad", "data-testid": "callback" },
      el("td", null, c.event),
      el("td", { class: "url" }, c.url),
      el("td", null, c.httpStatus === null ? "no answer" : "HTTP " + c.httpStatus),
      el("td", null, c.attempts + (c.attempts === 1 ? " attempt" : " attempts")),
      el("td", null, c.latencyMs + " ms"),
      el("td", null, time(c.date))));
  return el("table", { class: "callbacks" },
    el("thead", null, el("tr", null, ...["event", "URL", "answer", "attempts", "latency", "at"]
      .map((h) => el("th", null, h)))),
    el("tbody", null, ...rows));
}

function messageCard(m) {
  const timeline = el("ol", { class: "timeline" },
    ...m.timeline.map((t) => el("li", null, statusBadge(t.status), " ", time(t.date))));
  return el("article", { class: "message", "data-tracking-id": m.trackingId },
    el("div", { class: "bubble" },
      el("div", { class: "from" }, m.from),
      el("div", { class: "text", "data-testid": "text" }, m.text),
      el("div", { class: "when" }, time(m.createdAt), " ", statusBadge(m.status))),
    el("dl", { class: "meta" },
      el("dt", null, "sender"), el("dd", null, m.senderInfoTrackingId),
      el("dt", null, "template"), el("dd", null, m.templateId + " (" + m.templateLang + ")"),
      el("dt", null, "deliveryScope"), el("dd", null, m.deliveryScope),
      el("dt", null, "seq"), el("dd", null, m.seq),
      el("dt", null, "tracking id"), el("dd", null, m.trackingId),
      m.failureReason ? el("dt", null, "reason") : null,
      m.failureReason ? el("dd", { class: "reason" }, m.failureReason) : null),
    timeline,
    callbackTable(m.callbacks));
}

function threadCard(t) {
  const more = t.count > t.messages.length
    ? el("button", { type: "button", class: "link", onclick: () => search(t.to) },
      "all " + t.count + " messages")
    : null;
  return el("section", { class: "thread", "data-testid": "thread", "data-to": t.to },
    el("h2", null, t.to, " ", el("small", null, t.count + (t.count === 1 ? " message" : " messages")), " ", more),
    ...t.messages.map(messageCard));
}

async function loadInbox() {
  const query = view.to
    ? "?to=" + encodeURIComponent(view.to) + "&messages=200"
    : "?offset=" + view.offset + "&limit=" + PAGE;
  const data = await call("GET", "/inbox" + query);
  const { version, ...content } = data;  // the version changes on every event anywhere
  if (unchanged("inbox", { query, content })) return;
  const threads = document.getElementById("threads");
  threads.replaceChildren(...data.threads.map(threadCard));
  if (!data.threads.length) {
    threads.append(el("p", { class: "hint" }, view.to ? "No message to " + view.to + "." : "No message yet."));
  }
  const last = Math.min(data.offset + data.threads.length, data.total);
  document.getElementById("inbox-count").textContent = data.total
    ? (data.offset + 1) + "–" + last + " of " + data.total + " recipients, " + data.messageCount + " messages"
    : "";
  document.getElementById("prev").disabled = view.to !== "" || view.offset === 0;
  document.getElementById("next").disabled = view.to !== "" || last >= data.total;
}

function templateRow(t) {
  const actions = el("div", { class: "actions" });
  if (t.status === "PENDING_MODERATION") {
    const reason = el("input", { placeholder: "reason", "aria-label": "rejection reason",
      "data-reason-for": t.templateId });
    reason.value = reasons[t.templateId] || "";
    reason.addEventListener("input", () => { reasons[t.templateId] = reason.value; });
    actions.append(
      el("button", { type: "button", class: "approve", onclick: () => decide(t.templateId, "approve") }, "Approve"),
      reason,
      el("button", { type: "button", class: "reject danger",
        onclick: () => decide(t.templateId, "reject", { reason: reason.value }) }, "Reject"));
  } else if (t.rejectionReason) {
    actions.append(el("span", { class: "hint" }, t.rejectionReason));
  }
  return el("tr", { "data-template-id": t.templateId },
    el("td", { class: "mono" }, t.templateId),
    el("td", null, t.category),
    el("td", null, t.locales.map((l) => l.lang + ": " + l.template).join("\n")),
    el("td", null, t.params.map((p) => p.name + " (" + p.type + ")").join(", ")),
    el("td", null, statusBadge(t.status)),
    el("td", null, callbackTable(t.callbacks)),
    el("td", null, actions));
}

async function loadTemplates() {
  const data = await call("GET", "/templates");
  if (unchanged("templates", data)) return;
  document.getElementById("moderation-mode").textContent = data.moderation;
  // A re-render must not take a half-typed rejection reason, or its focus, from the user.
  const typing = document.activeElement && document.activeElement.dataset.reasonFor;
  document.getElementById("template-rows").replaceChildren(...data.templates.map(templateRow));
  if (typing) {
    const input = document.querySelector(`[data-reason-for="${CSS.escape(typing)}"]`);
    if (input) input.focus();
  }
}

async function decide(id, decision, body) {
  await call("POST", "/templates/" + encodeURIComponent(id) + "/" + decision, body || {});
  refresh();
}

async function loadControls() {
  const state = await call("GET", "/state");
  const items = [];
  for (const [to, c] of Object.entries(state.fates.recipients)) {
    items.push(el("li", null, to + ": " + c.fate + (c.reason ? " (" + c.reason + ")" : "") + " ",
      el("button", { type: "button", class: "link",
        onclick: () => call("DELETE", "/fates?to=" + encodeURIComponent(to)).then(refresh) }, "clear")));
  }
  if (state.fates.next.length) {
    items.push(el("li", null, "next " + state.fates.next.length + " messages: " +
      state.fates.next.map((c) => c.fate).join(", ") + " ",
      el("button", { type: "button", class: "link", onclick: () => call("DELETE", "/fates").then(refresh) }, "clear all")));
  }
  document.getElementById("fates").replaceChildren(...items);
  if (faultPostsPending === 0) {  // else the user's newer clicks are on their way
    for (const box of document.querySelectorAll("[data-fault]")) {
      box.checked = state.faults[box.dataset.fault] > 0;
    }
  }
  const counts = Object.entries(state.faultCounts).filter(([, n]) => n > 0)
    .map(([kind, n]) => kind + " " + n);
  document.getElementById("fault-counts").textContent =
    "Injected so far: " + (counts.length ? counts.join(", ") : "none");
}

const loaders = { inbox: loadInbox, templates: loadTemplates, controls: loadControls };

// One load at a time; a change during a load asks for one more after it (never a pile-up).
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    do {
      again = false;
      await loaders[view.tab]();
    } while (again);
  } catch (error) {
    console.error(error);
  } finally {
    busy = false;
  }
}

function search(to) {
  document.getElementById("search").value = to;
  view.to = to;
  view.offset = 0;
  refresh();
}

function showTab(name) {
  view.tab = name;
  for (const button of document.querySelectorAll(".tab")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== name;
  refresh();
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource(API + "/events");
  source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
  source.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "live off"; });
  source.addEventListener("change", refresh);
}

function faultRates() {
  const share = Number(document.getElementById("fault-share").value) || 0;
  const rates = {
    retryAfter: Number(document.getElementById("retry-after").value) || 0,
    slowReplyDelay: Number(document.getElementById("slow-delay").value) || 0,
  };
  for (const box of document.querySelectorAll("[data-fault]")) {
    rates[box.dataset.fault] = box.checked ? share : 0;
  }
  return rates;
}

function setUp() {
  for (const button of document.querySelectorAll(".tab")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  document.getElementById("search").addEventListener("input", (event) => search(event.target.value.trim()));
  document.getElementById("prev").addEventListener("click", () => { view.offset = Math.max(0, view.offset - PAGE); refresh(); });
  document.getElementById("next").addEventListener("click", () => { view.offset += PAGE; refresh(); });
  document.getElementById("fate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { fate: document.getElementById("fate").value };
    const reason = document.getElementById("fate-reason").value.trim();
    if (reason) body.reason = reason;
    if (document.querySelector("[name=target]:checked").value === "recipient") {
      body.to = document.getElementById("fate-to").value.trim();
    } else {
      body.count = Number(document.getElementById("fate-count").value) || 1;
    }
    await call("POST", "/fates", body);
    refresh();
  });
  // One POST at a time, in the order of the changes: the last change is the one that stays.
  let faultPosts = Promise.resolve();
  document.getElementById("fault-form").addEventListener("change", () => {
    const rates = faultRates();
    faultPostsPending += 1;
    faultPosts = faultPosts
      .then(() => call("POST", "/faults", rates))
      .catch(console.error)
      .finally(() => { faultPostsPending -= 1; refresh(); });
  });
  document.getElementById("reset").addEventListener("click", async () => {
    await call("POST", "/reset");
    refresh();
  });
  connect();
  refresh();
}

setUp();
