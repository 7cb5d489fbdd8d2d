// prefkit annotator page: one task at a time, keyboard shortcuts, retried idempotent submits.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  let task = null;
  let choice = null; // left | right | tie | both_bad
  let shownAt = 0;
  let pendingKey = null; // kept across retries of one submit
  let busy = false;
  let lastSeq = 0; // the highest task number shown so far

  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, path, body) {
    const opts = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    if (!r.ok) {
      const err = new Error("HTTP " + r.status);
      err.status = r.status;
      throw err;
    }
    return r.json();
  }

  function setProgress(p) {
    if (p) $("progress").textContent = p.done + " / " + p.total + " judged";
  }

  function select(c) {
    choice = c;
    document.querySelectorAll(".choice").forEach((b) => {
      b.classList.toggle("selected", b.dataset.choice === c);
      b.setAttribute("aria-pressed", b.dataset.choice === c ? "true" : "false");
    });
    $("submit").disabled = c === null;
    $("strength-box").classList.toggle("muted", c !== "left" && c !== "right");
  }

  // Optional questions: thumbs up/down per response, Likert 1-5 per aspect and response.
  function radioRow(box, label, name, values, current) {
    const row = document.createElement("div");
    row.className = "qrow";
    const span = document.createElement("span");
    span.textContent = label;
    row.appendChild(span);
    for (const v of values) {
      const l = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = name;
      input.value = String(v[0]);
      input.checked = current !== undefined && current !== null && String(current) === String(v[0]);
      l.appendChild(input);
      l.appendChild(document.createTextNode(" " + v[1]));
      row.appendChild(l);
    }
    box.appendChild(row);
  }

  function buildExtras(t) {
    const ans = t.answer || {};
    const thumbs = $("thumbs-box");
    thumbs.replaceChildren();
    thumbs.hidden = !t.questions.includes("thumbs");
    if (!thumbs.hidden) {
      for (const side of ["left", "right"]) {
        const prev = ans.thumbs ? ans.thumbs[t[side]] : undefined;
        radioRow(thumbs, "Thumbs, " + side + ":", "thumbs-" + side, [["true", "up"], ["false", "down"]], prev);
      }
    }
    const likert = $("likert-box");
    likert.replaceChildren();
    likert.hidden = !t.questions.includes("likert");
    if (!likert.hidden) {
      for (const aspect of t.aspects) {
        for (const side of ["left", "right"]) {
          const key = aspect + ":" + t[side];
          const prev = ans.likert ? ans.likert[key] : undefined;
          radioRow(likert, aspect + ", " + side + " (1-5):", "likert-" + aspect + "-" + side,
            [[1, "1"], [2, "2"], [3, "3"], [4, "4"], [5, "5"]], prev);
        }
      }
    }
  }

  // Ranking items (k responses): one rank selector per response, 1 = best.
  function buildRanking(t) {
    const box = $("ranking-box");
    box.replaceChildren();
    const ranked = t.kind === "rankings";
    box.hidden = !ranked;
    $("pair").hidden = ranked;
    if (!ranked) return;
    const prev = t.answer && t.answer.ranking ? t.answer.ranking : null;
    t.responses_html.forEach((html, i) => {
      const sec = document.createElement("section");
      sec.className = "resp";
      const h = document.createElement("h2");
      h.textContent = "Response " + (i + 1) + " — rank ";
      const sel = document.createElement("select");
      sel.name = "rank-" + i;
      sel.id = "rank-" + i;
      for (let r = 1; r <= t.responses_html.length; r++) {
        const o = document.createElement("option");
        o.value = String(r);
        o.textContent = String(r);
        o.selected = prev ? prev[i] === r : r === i + 1;
        sel.appendChild(o);
      }
      h.appendChild(sel);
      const body = document.createElement("div");
      body.className = "md";
      body.innerHTML = html; // sanitised on the server (markdown-it + nh3)
      sec.appendChild(h);
      sec.appendChild(body);
      box.appendChild(sec);
    });
  }

  function readExtras(t, body) {
    if (t.kind === "rankings") {
      body.ranking = t.responses_html.map((_, i) => parseInt($("rank-" + i).value, 10));
    }
    if (t.questions.includes("thumbs")) {
      const th = {};
      for (const side of ["left", "right"]) {
        const r = document.querySelector('input[name="thumbs-' + side + '"]:checked');
        if (r) th[t[side]] = r.value === "true";
      }
      if (Object.keys(th).length) body.thumbs = th;
    }
    if (t.questions.includes("likert")) {
      const lk = {};
      for (const aspect of t.aspects) {
        for (const side of ["left", "right"]) {
          const r = document.querySelector('input[name="likert-' + aspect + "-" + side + '"]:checked');
          if (r) lk[aspect + ":" + t[side]] = parseInt(r.value, 10);
        }
      }
      if (Object.keys(lk).length) body.likert = lk;
    }
  }

  function show(t) {
    setProgress(t.progress);
    if (t.done) {
      task = null;
      $("task").hidden = true;
      $("done").hidden = !!t.closed;
      $("closed").hidden = !t.closed;
      document.body.dataset.state = t.closed ? "closed" : "done";
      return;
    }
    task = t;
    lastSeq = Math.max(lastSeq, t.seq);
    pendingKey = null;
    $("done").hidden = true;
    $("task").hidden = false;
    // HTML below is rendered and sanitised on the server (markdown-it + nh3) and CSP forbids
    // inline script, so no untrusted script can run.
    $("prompt").innerHTML = t.prompt_html;
    $("left").innerHTML = t.responses_html[0];
    $("right").innerHTML = t.responses_html[1] || "";
    $("back").disabled = t.seq <= 1;
    $("rationale").value = "";
    let c = null;
    if (t.answer && t.answer.outcome) {
      const o = t.answer.outcome;
      c = o === t.left ? "left" : o === t.right ? "right" : o;
      if (t.answer.rationale) $("rationale").value = t.answer.rationale;
      if (t.answer.strength != null) {
        // strength is directional (1 = strongly prefers a); the radios say how much better
        const steps = Math.round(Math.abs(t.answer.strength - 0.5) * 6);
        document.querySelectorAll('input[name="strength"]').forEach((r) => {
          r.checked = parseInt(r.value, 10) === steps;
        });
      }
    }
    select(c);
    buildExtras(t);
    buildRanking(t);
    $("choices").hidden = !t.questions.includes("pairwise");
    if (!t.questions.includes("pairwise")) $("submit").disabled = false;
    $("strength-box").hidden = !t.questions.includes("strength");
    $("rationale-box").hidden = !t.questions.includes("rationale");
    shownAt = performance.now();
    document.body.dataset.state = "task";
    document.body.dataset.seq = String(t.seq);
    $("status").textContent = t.answer ? "answered (revision " + t.answer.revision + ")" : "";
  }

  async function load(path) {
    try {
      show(await api("GET", path));
    } catch (e) {
      $("status").textContent = "could not load the task (" + e.message + ")";
    }
  }

  async function submit() {
    if (!task || busy) return;
    if (choice === null && task.questions.includes("pairwise")) return;
    busy = true;
    const outcome = choice === null ? null : choice === "left" ? task.left : choice === "right" ? task.right : choice;
    const s = document.querySelector('input[name="strength"]:checked');
    if (pendingKey === null) pendingKey = newKey();
    // canonical directional strength: 1 = strongly prefers a, 0 = strongly prefers b;
    // slightly / clearly / much better = 1, 2, 3 steps of 1/6 from 0.5 towards the winner
    let strength = null;
    if ((outcome === "a" || outcome === "b") && s && task.questions.includes("strength")) {
      const step = parseInt(s.value, 10) / 6;
      strength = outcome === "a" ? 0.5 + step : 0.5 - step;
    }
    const body = {
      idempotency_key: pendingKey,
      item_id: task.item_id,
      outcome: outcome,
      strength: strength,
      rationale: $("rationale").value.trim() || null,
      elapsed_ms: Math.round(performance.now() - shownAt),
    };
    readExtras(task, body);
    $("status").textContent = "saving…";
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await api("POST", "/api/votes", body);
        pendingKey = null;
        busy = false;
        $("status").textContent = "saved";
        await load("/api/task/next");
        return;
      } catch (e) {
        if (e.status && e.status < 500) {
          $("status").textContent = "not saved: " + (e.status === 409 ? "the campaign is closed or this answer conflicts with an earlier one" : e.message);
          document.body.dataset.state = "refused";
          break;
        }
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
      }
    }
    busy = false;
  }

  async function back() {
    if (!task) {
      // all done (or closed): back to the last task answered, if any
      await load(lastSeq >= 1 ? "/api/tasks/" + lastSeq : "/api/task/next");
      return;
    }
    if (task.seq <= 1) return;
    await load("/api/tasks/" + (task.seq - 1));
  }

  document.querySelectorAll(".choice").forEach((b) => {
    b.addEventListener("click", () => select(b.dataset.choice));
  });
  $("submit").addEventListener("click", submit);
  $("back").addEventListener("click", back);
  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.tagName === "TEXTAREA") {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) submit();
      return;
    }
    const keys = { "1": "left", ArrowLeft: "left", "2": "right", ArrowRight: "right", "3": "tie", "4": "both_bad" };
    if (keys[ev.key]) {
      ev.preventDefault();
      select(keys[ev.key]);
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      submit();
    } else if (ev.key === "Backspace") {
      ev.preventDefault();
      back();
    }
  });
  load("/api/task/next");
})();
