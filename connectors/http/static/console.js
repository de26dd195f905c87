// Floodgate console: polls the JSON API and redraws; changes go through POST with a confirmation.
"use strict";

const REFRESH_MS = 2000;
const DIMENSION_TITLES = {
  sasl_username: "SASL accounts", sender: "Envelope senders",
  sender_domain: "Sender domains", client_ip: "Client addresses",
  client_net: "Client networks",
};
const KIND_COLOURS = {
  dunno: "#2f855a", warn: "#2b6cb0", defer: "#b7791f", quarantine: "#6b46c1",
  block: "#c53030", other: "#9aa5b1",
};

const state = { operator: null, window: "limits", query: "", inForce: new Set(), chart: null, pending: null, failures: 0 };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("data-")) node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Floodgate-Console": "1" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

function shortTime(iso) {
  const date = new Date(iso);
  return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit",
                                          minute: "2-digit", second: "2-digit" });
}

function seconds(s) {
  if (s >= 86400 && s % 86400 === 0) return `${s / 86400}d`;
  if (s >= 3600 && s % 3600 === 0) return `${s / 3600}h`;
  if (s >= 60 && s % 60 === 0) return `${s / 60}m`;
  return `${Math.round(s * 10) / 10}s`;
}

function settingsText(settings) {
  if (!settings) return "";
  const parts = [settings.class || "default"];
  for (const [name, text] of Object.entries(settings.overrides)) parts.push(`${name} ${text}`);
  if (settings.exempt) parts.push("exempt");
  return parts.join(", ");
}

// -- actions in force -------------------------------------------------------

async function refreshActions() {
  const doc = await getJSON(`/api/actions?q=${encodeURIComponent(state.query)}`);
  const body = document.querySelector("#actions tbody");
  const rows = doc.actions.map((a) => {
    const lift = el("button", { type: "button", class: "lift", textContent: "Lift" });
    lift.addEventListener("click", () => openLift(a));
    return el("tr", { class: a.enforced ? "" : "shadow", "data-subject": a.subject,
                      "data-action-id": a.action_id },
      el("td", { class: "subject" }, a.subject),
      el("td", { class: "class", title: a.settings ? `set by ${a.settings.actor}: ${a.settings.reason}` : "" },
         settingsText(a.settings)),
      el("td", {}, el("span", { class: `badge ${a.action}` }, a.action)),
      el("td", {}, a.mode),
      el("td", { class: "who" }, a.who),
      el("td", {}, shortTime(a.since)),
      el("td", {}, shortTime(a.until)),
      el("td", { class: "why" }, a.why),
      el("td", {}, a.escalation === "-" ? "" : a.escalation),
      el("td", {}, lift));
  });
  body.replaceChildren(...rows);
  document.getElementById("actions-empty").hidden = rows.length > 0;
  document.getElementById("actions-count").textContent =
    state.query ? `(${rows.length} of ${doc.total_in_force})` : `(${doc.total_in_force})`;
  state.inForce = new Set(doc.actions.map((a) => a.subject));
}

// -- top subjects -----------------------------------------------------------

function percent(share) {
  return `${Math.round(share * 100)}%`;
}

function nearRow(r) {
  const spam = r.flagged_limit ? `, ${r.flagged}/${r.flagged_limit} spam` : "";
  return el("tr", {
      class: [state.inForce.has(r.subject) ? "acted" : "", r.near ? "near" : ""].join(" ").trim(),
      "data-subject": r.subject,
      title: `${r.at_least ? "at least " : ""}${r.messages} of ${r.limit} in ${seconds(r.window_s)}` },
    el("td", { class: "subject" }, r.subject,
       state.inForce.has(r.subject) ? el("span", { class: "flag", title: "an action is in force" }, " ⚑") : "",
       r.settings ? el("span", { class: "class", title: `set by ${r.settings.actor}: ${r.settings.reason}` },
                       ` [${settingsText(r.settings)}]`) : "",
       el("div", { class: "bar" }, el("span", { style: `width:${Math.min(100, Math.max(2, 100 * r.share))}%` }))),
    el("td", {}, r.threshold),
    el("td", { class: "num" }, `${r.at_least ? "≥" : ""}${r.messages} / ${r.limit}${spam} in ${seconds(r.window_s)}`),
    el("td", { class: "num share" }, percent(r.share)));
}

function drawNear(doc) {
  const table = el("div", { "data-view": "limits" },
    el("h3", {}, "Nearest to a threshold's limit ",
       el("span", { class: "total" }, `${doc.subjects_near} at ${percent(doc.near_from)} or more`)),
    el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Subject"), el("th", {}, "threshold"),
                                   el("th", {}, "count / limit"), el("th", {}, "of limit"))),
      el("tbody", {}, ...doc.rows.map(nearRow))));
  document.getElementById("top").replaceChildren(table);
  document.getElementById("top-note").textContent =
    "counts from the console's summaries over each threshold's window; the worker decides";
}

async function refreshTop() {
  const doc = await getJSON(`/api/top?window=${state.window}`);
  if (state.window === "limits") {
    drawNear(doc);
    return;
  }
  const grid = document.getElementById("top");
  const tables = Object.entries(doc.dimensions).map(([dimension, part]) => {
    const heaviest = part.rows.length ? part.rows[0].messages : 1;
    const rows = part.rows.map((r) => el("tr", {
        class: [state.inForce.has(r.subject) ? "acted" : "",
                r.nearest && r.nearest.near ? "near" : ""].join(" ").trim(),
        "data-subject": r.subject,
        title: `between ${r.at_least} and ${r.at_most} messages` },
      el("td", { class: "subject" }, r.value,
         state.inForce.has(r.subject) ? el("span", { class: "flag", title: "an action is in force" }, " ⚑") : "",
         r.nearest && r.nearest.near ? el("span", { class: "near-flag",
           title: `${percent(r.nearest.share)} of ${r.nearest.threshold}'s limit` },
           ` ${percent(r.nearest.share)} of ${r.nearest.threshold}`) : "",
         r.settings ? el("span", { class: "class", title: `set by ${r.settings.actor}: ${r.settings.reason}` },
                         ` [${settingsText(r.settings)}]`) : "",
         el("div", { class: "bar" }, el("span", { style: `width:${Math.max(2, 100 * r.messages / heaviest)}%` }))),
      el("td", { class: "num" }, r.per_minute.toFixed(1)),
      el("td", { class: "num" }, r.messages),
      el("td", { class: "num" }, `${Math.round(r.spam_share * 100)}%`)));
    return el("div", { "data-dimension": dimension },
      el("h3", {}, DIMENSION_TITLES[dimension] || dimension, " ",
         el("span", { class: "total" }, `${part.messages} messages, ±${part.max_error}`)),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Subject"), el("th", {}, "msgs/min"),
                                     el("th", {}, "messages"), el("th", {}, "spam"))),
        el("tbody", {}, ...rows)));
  });
  grid.replaceChildren(...tables);
  document.getElementById("top-note").textContent =
    `counts are at most ±(messages / ${doc.capacity}) off`;
  document.getElementById("algorithm").textContent =
    `Top subjects: ${doc.algorithm}, ${doc.capacity} counters per dimension and minute.`;
}

// -- policy answers ---------------------------------------------------------

async function refreshAnswers() {
  const doc = await getJSON("/api/answers");
  document.getElementById("rps").textContent = doc.requests_per_second_last_minute.toFixed(1);
  const xs = doc.series.map((b) => b.t);
  const data = [xs, ...doc.kinds.map((kind) => doc.series.map((b) => b[kind] / doc.bucket_s))];
  if (state.chart === null) {
    const holder = document.getElementById("chart");
    state.chart = new uPlot({
      width: Math.max(holder.clientWidth, 400), height: 220,
      scales: { x: { time: true } },
      axes: [{}, { label: "answers/s", size: 60 }],
      series: [{}, ...doc.kinds.map((kind) => ({
        label: kind, stroke: KIND_COLOURS[kind], width: 2,
        value: (_u, v) => (v === null ? "-" : v.toFixed(1)) }))],
    }, data, holder);
    window.addEventListener("resize", () =>
      state.chart.setSize({ width: Math.max(holder.clientWidth, 400), height: 220 }));
  } else {
    state.chart.setData(data);
  }
}

// -- lift and add -----------------------------------------------------------

const dialog = () => document.getElementById("confirm");

function openDialog(title, text, isAdd) {
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("add-fields").hidden = !isAdd;
  document.getElementById("reset-row").hidden = isAdd;
  document.getElementById("confirm-error").textContent = "";
  document.getElementById("f-actor").value = state.operator || localStorage.getItem("floodgate-actor") || "";
  document.getElementById("f-reason").value = "";
  document.getElementById("f-reset").checked = false;
  dialog().showModal();
}

function openLift(action) {
  state.pending = { kind: "lift", subject: action.subject };
  openDialog(`Lift ${action.action} on ${action.subject}?`,
             "Every action in force on this subject ends now; mail from it passes again.", false);
  document.getElementById("confirm-ok").textContent = "Lift";
}

function openAdd(subject) {
  state.pending = { kind: "add" };
  openDialog("Add an action", "The policy service applies it to the subject's mail at once.", true);
  document.getElementById("f-subject").value = subject || "";
  document.getElementById("confirm-ok").textContent = "Add";
}

async function confirmChange() {
  const actor = document.getElementById("f-actor").value.trim();
  const reason = document.getElementById("f-reason").value.trim();
  const error = document.getElementById("confirm-error");
  if (!actor || !reason) { error.textContent = "Who and why are both required (kept for audit)."; return; }
  localStorage.setItem("floodgate-actor", actor);
  try {
    if (state.pending.kind === "lift") {
      await postJSON("/api/actions/lift", { subject: state.pending.subject, actor, reason,
                                            reset: document.getElementById("f-reset").checked });
    } else {
      await postJSON("/api/actions/add", {
        subject: document.getElementById("f-subject").value.trim(),
        action: document.getElementById("f-action").value,
        duration: document.getElementById("f-duration").value.trim(), actor, reason });
    }
  } catch (problem) {
    error.textContent = problem.message;
    return;
  }
  dialog().close();
  await refresh();
}

// -- subject settings -------------------------------------------------------

const settingsDialog = () => document.getElementById("settings");

async function showSettings() {
  const subject = document.getElementById("s-subject").value.trim();
  const error = document.getElementById("settings-error");
  error.textContent = "";
  if (!subject) return;
  try {
    const doc = await getJSON(`/api/settings?subject=${encodeURIComponent(subject)}`);
    const choice = document.getElementById("s-class");
    choice.replaceChildren(...doc.classes.map((name) => el("option", { value: name }, name)));
    const settings = doc.settings;
    choice.value = settings && settings.class ? settings.class : doc.default_class;
    document.getElementById("s-overrides").value = settings ? Object.entries(settings.overrides)
      .filter(([, text]) => text !== "off")
      .flatMap(([name, text]) => text.split(" ").map((pair) => `${name}.${pair}`)).join(", ") : "";
    document.getElementById("s-off").value = settings ? Object.entries(settings.overrides)
      .filter(([, text]) => text === "off").map(([name]) => name).join(", ") : "";
    document.getElementById("s-exempt").checked = Boolean(settings && settings.exempt);
    document.getElementById("s-current").textContent = settings
      ? `${doc.subject}: ${settingsText(settings)} (set by ${settings.actor} at ${settings.at}: ${settings.reason})`
      : `${doc.subject}: no settings (class ${doc.default_class})`;
    document.getElementById("s-effective").replaceChildren(
      ...doc.effective.map((line) => el("li", {}, line)));
  } catch (problem) {
    error.textContent = problem.message;
  }
}

function openSettings(subject) {
  document.getElementById("s-subject").value = subject || "";
  document.getElementById("s-actor").value = state.operator || localStorage.getItem("floodgate-actor") || "";
  document.getElementById("s-reason").value = "";
  for (const id of ["s-current", "settings-error"]) document.getElementById(id).textContent = "";
  document.getElementById("s-effective").replaceChildren();
  settingsDialog().showModal();
  showSettings();
}

async function changeSettings(remove) {
  const actor = document.getElementById("s-actor").value.trim();
  const reason = document.getElementById("s-reason").value.trim();
  const error = document.getElementById("settings-error");
  if (!actor || !reason) { error.textContent = "Who and why are both required (kept for audit)."; return; }
  localStorage.setItem("floodgate-actor", actor);
  const subject = document.getElementById("s-subject").value.trim();
  try {
    if (remove) {
      await postJSON("/api/settings/unset", { subject, actor, reason });
    } else {
      await postJSON("/api/settings/set", {
        subject, class: document.getElementById("s-class").value,
        overrides: document.getElementById("s-overrides").value,
        off: document.getElementById("s-off").value,
        exempt: document.getElementById("s-exempt").checked, actor, reason });
    }
  } catch (problem) {
    error.textContent = problem.message;
    return;
  }
  await showSettings();
  await refresh();
}

// -- wiring -----------------------------------------------------------------

async function refresh() {
  const status = document.getElementById("status");
  try {
    await refreshActions();
    await refreshTop();
    await refreshAnswers();
    state.failures = 0;
    status.className = "status live";
    status.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  } catch (problem) {
    state.failures += 1;
    status.className = "status stale";
    status.textContent = `not updating: ${problem.message}`;
  }
}

async function signedIn() {
  // a named credential (own token, or the proxy's user) decides who every change is by
  const doc = await getJSON("/api/whoami");
  state.operator = doc.operator;
  if (!state.operator) return;
  document.getElementById("operator").textContent = `signed in as ${state.operator}`;
  for (const id of ["f-actor", "s-actor"]) {
    const field = document.getElementById(id);
    field.value = state.operator;
    field.readOnly = true;
    field.title = "changes are recorded under the name you signed in with";
  }
}

function wire() {
  signedIn().catch(() => {});
  document.getElementById("filter").addEventListener("input", (event) => {
    state.query = event.target.value;
    refreshActions().catch(() => {});
  });
  for (const button of document.querySelectorAll("#windows button")) {
    button.addEventListener("click", () => {
      state.window = button.dataset.window;
      for (const other of document.querySelectorAll("#windows button")) other.classList.remove("on");
      button.classList.add("on");
      refreshTop().catch(() => {});
    });
  }
  document.getElementById("add-open").addEventListener("click", () => openAdd(""));
  document.getElementById("settings-open").addEventListener("click", () => openSettings(""));
  document.getElementById("s-subject").addEventListener("change", () => { showSettings(); });
  document.getElementById("settings-cancel").addEventListener("click", () => settingsDialog().close());
  document.getElementById("settings-set").addEventListener("click", () => { changeSettings(false); });
  document.getElementById("settings-unset").addEventListener("click", () => { changeSettings(true); });
  document.getElementById("actions").addEventListener("dblclick", (event) => {
    const row = event.target.closest("tr[data-subject]");
    if (row) openSettings(row.dataset.subject);
  });
  document.getElementById("top").addEventListener("dblclick", (event) => {
    const row = event.target.closest("tr[data-subject]");
    if (row) openAdd(row.dataset.subject);
  });
  document.getElementById("confirm-form").addEventListener("input", () => {
    document.getElementById("confirm-error").textContent = "";
  });
  document.getElementById("confirm-cancel").addEventListener("click", () => dialog().close());
  document.getElementById("confirm-ok").addEventListener("click", () => { confirmChange(); });
  refresh();
  setInterval(refresh, REFRESH_MS);
}

wire();
