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
    location.href = "/admin/campaigns/" + c.id;
  });
})();
