// prefkit admin: create a campaign from an uploaded file.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("new-campaign");
  const status = document.getElementById("nc-status");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    if (!document.getElementById("nc-gold").checked) data.delete("gold_from_outcome");
    status.textContent = "uploading…";
    const r = await fetch("/api/campaigns/upload", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf },
      body: data,
    });
    if (!r.ok) {
      let detail = "HTTP " + r.status;
      try {
        const j = await r.json();
        detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail);
      } catch (e) {}
      status.textContent = "not created: " + detail;
      return;
    }
    const c = await r.json();
    if (c.import && c.import.rejected > 0) {
      // say what was rejected before moving on; the campaign page shows it too
      status.textContent = "created with " + c.items + " items; " + c.import.rejected +
        " rows rejected (first: " + c.import.rejects[0].reason + ")";
      const a = document.createElement("a");
      a.href = "/admin/campaigns/" + c.id;
      a.id = "nc-open";
      a.textContent = " open the campaign";
      status.appendChild(a);
      return;
    }
    location.href = "/admin/campaigns/" + c.id;
  });
})();
