// agent-ticket dashboard: keeps a ticket page current while its workflow moves on.
// Listens to /tickets/{id}/events (server-sent events); falls back to polling status.json.
// When the page's version changes, the ticket part of the page is fetched again and swapped in.
"use strict";

(function () {
  const POLL_MS = 3000;

  function ticketRoot() {
    return document.getElementById("ticket");
  }

  function typedValues(root) {
    const values = {};
    root.querySelectorAll("form[id] textarea[name]").forEach(function (field) {
      if (field.value) values[field.form.id + "/" + field.name] = field.value;
    });
    return values;
  }

  function restoreValues(root, values) {
    root.querySelectorAll("form[id] textarea[name]").forEach(function (field) {
      const kept = values[field.form.id + "/" + field.name];
      if (kept && !field.value) field.value = kept;
    });
  }

  function showSignedOut() {
    const live = document.getElementById("live-indicator");
    if (live) {
      live.textContent = "Signed out";
      live.classList.add("offline");
    }
    if (document.getElementById("session-expired")) return;
    const note = document.createElement("div");
    note.id = "session-expired";
    note.className = "flash flash-warn";
    note.setAttribute("role", "alert");
    const link = document.createElement("a");
    link.href = "/login?expired=1&next=" + encodeURIComponent(location.pathname);
    link.textContent = "Sign in again";
    note.append("Your session has expired, so this page stopped updating. ", link, ".");
    const root = ticketRoot();
    if (root) root.prepend(note);
  }

  let refreshing = null;

  async function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async function () {
      const response = await fetch(location.pathname, {
        headers: { "X-Dashboard-Fragment": "ticket" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401 || response.redirected) {
        showSignedOut();
        return;
      }
      if (!response.ok) return;
      const html = await response.text();
      const parsed = new DOMParser().parseFromString(html, "text/html");
      const fresh = parsed.getElementById("ticket");
      const current = ticketRoot();
      if (!fresh || !current) return;
      const values = typedValues(current);
      current.replaceWith(fresh);
      restoreValues(fresh, values);
      document.dispatchEvent(new CustomEvent("ticket:updated", { detail: { version: fresh.dataset.version } }));
    })().finally(function () {
      refreshing = null;
    });
    return refreshing;
  }

  async function onStatus(state) {
    const root = ticketRoot();
    if (!root) return;
    if (state.version !== root.dataset.version) await refresh();
  }

  function poll(url) {
    const timer = setInterval(async function () {
      try {
        const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (response.status === 401) {
          clearInterval(timer);
          showSignedOut();
          return;
        }
        if (!response.ok) return;
        const state = await response.json();
        await onStatus(state);
        if (state.finished) clearInterval(timer);
      } catch (error) {
        // The bot is restarting or the network dropped; the next tick tries again.
      }
    }, POLL_MS);
  }

  function follow() {
    const root = ticketRoot();
    if (!root || root.dataset.live !== "true") return;
    const statusUrl = root.dataset.statusUrl;
    if (!("EventSource" in window)) {
      poll(statusUrl);
      return;
    }
    const source = new EventSource(root.dataset.eventsUrl);
    source.addEventListener("status", function (event) {
      const state = JSON.parse(event.data);
      onStatus(state);
      if (state.finished) source.close();
    });
    source.addEventListener("error", function () {
      // Closed for good (401, 404): fall back to polling, which also notices an expired session.
      if (source.readyState === EventSource.CLOSED) poll(statusUrl);
    });
  }

  document.addEventListener("DOMContentLoaded", follow);
})();
