// prefkit admin campaign page: live statistics, invitations. Values go in as text only.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const root = document.getElementById("campaign");
  const cid = root.dataset.id;

  function cell(tr, v) {
    const td = document.createElement("td");
    td.textContent = v === null || v === undefined ? "–" : String(v);
    tr.appendChild(td);
  }
  function fmt(x, d) {
    return x === null || x === undefined ? null : Number(x).toFixed(d);
  }

  async function refresh() {
    const r = await fetch("/api/campaigns/" + cid + "/stats", { credentials: "same-origin" });
    if (!r.ok) return;
    const s = await r.json();
    const ag = s.agreement;
    document.getElementById("summary").textContent =
      s.campaign.items + " items · " + s.votes + " answers · agreement " +
      (ag.raw === null ? "n/a" : fmt(ag.raw, 3)) + " raw, Fleiss κ " +
      (ag.fleiss_kappa === null ? "n/a" : fmt(ag.fleiss_kappa, 3)) + " over " + ag.items + " items";
    const tb = document.querySelector("#annotators tbody");
    tb.replaceChildren();
    for (const a of s.annotators) {
      const tr = document.createElement("tr");
      cell(tr, a.name);
      cell(tr, a.done);
      cell(tr, a.submissions);
      cell(tr, a.gold_seen);
      cell(tr, fmt(a.gold_accuracy, 2));
      cell(tr, fmt(a.agree_with_others, 2));
      cell(tr, a.median_ms === null ? null : (a.median_ms / 1000).toFixed(1) + " s");
      const td = document.createElement("td");
      if (a.revoked) {
        td.textContent = "revoked";
      } else {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "revoke";
        b.dataset.id = String(a.id);
        b.textContent = "Revoke";
        b.addEventListener("click", () => revoke(a.id, a.name));
        td.appendChild(b);
      }
      tr.appendChild(td);
      tb.appendChild(tr);
    }
    const lb = document.querySelector("#leaderboard tbody");
    lb.replaceChildren();
    document.getElementById("leaderboard-section").hidden = s.leaderboard.length === 0;
    s.leaderboard.forEach((m, i) => {
      const tr = document.createElement("tr");
      cell(tr, i + 1);
      cell(tr, m.model);
      cell(tr, fmt(m.score, 3));
      cell(tr, m.battles);
      lb.appendChild(tr);
    });
    document.body.dataset.loaded = "1";
  }

  async function post(path) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf },
    });
  }

  async function revoke(id, name) {
    const r = await post("/api/campaigns/" + cid + "/annotators/" + id + "/revoke");
    document.getElementById("invite-result").textContent = r.ok
      ? "Invitation of " + name + " revoked."
      : "could not revoke (HTTP " + r.status + ")";
    refresh();
  }

  async function setClosed(closed) {
    const r = await post("/api/campaigns/" + cid + (closed ? "/close" : "/reopen"));
    if (!r.ok) return;
    const c = await r.json();
    document.getElementById("campaign-state").textContent = c.closed ? "closed" : "open";
    document.getElementById("close-campaign").hidden = c.closed;
    document.getElementById("reopen-campaign").hidden = !c.closed;
  }
  document.getElementById("close-campaign").addEventListener("click", () => setClosed(true));
  document.getElementById("reopen-campaign").addEventListener("click", () => setClosed(false));

  document.getElementById("invite-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = document.getElementById("invite-name").value.trim();
    const r = await fetch("/api/campaigns/" + cid + "/annotators", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ name: name }),
    });
    const out = document.getElementById("invite-result");
    if (!r.ok) {
      out.textContent = "could not invite (HTTP " + r.status + ")";
      return;
    }
    const a = await r.json();
    out.textContent = "Invite link for " + a.name + ": " + location.origin + a.invite_path;
    refresh();
  });

  refresh();
  setInterval(refresh, 3000);
})();
