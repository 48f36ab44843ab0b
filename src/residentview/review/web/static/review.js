// The review page. Plain JavaScript served by the app itself (no network needed). Record values
// are put on the page as text only (textContent), never as HTML.
"use strict";

(function () {
  const RUN = document.body.dataset.run;
  const BLIND_LOCKED = document.body.dataset.blindLocked === "true";
  const KEYS = { m: "match", n: "non-match", u: "unsure", s: "skip" };
  const SKIPPED_KEY = "rv.skipped." + RUN;

  const state = {
    reviewer: localStorage.getItem("rv.reviewer") || "",
    skipped: new Set(JSON.parse(sessionStorage.getItem(SKIPPED_KEY) || "[]")),
    tab: "queue",
    pair: null,
    queueVersion: 0,
    busy: false,
    stale: false,
    resident: null,
    residentVersion: 0,
    undoable: null,
  };

  const $ = (id) => document.getElementById(id);

  // -- building the page from data --------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "style") Object.assign(node.style, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    return fill(node, ...children);
  }

  // Like replaceChildren, but skipping null / false (which the DOM would write out as text).
  function fill(node, ...children) {
    node.replaceChildren();
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function percent(p) {
    if (p === null || p === undefined) return "unknown";
    if (p > 0.999) return "over 99.9%";
    if (p < 0.001) return "under 0.1%";
    return (100 * p).toFixed(1) + "%";
  }

  function when(iso) {
    if (!iso) return "when unknown";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
  }

  function signed(w) {
    return (w >= 0 ? "+" : "") + Number(w).toFixed(2);
  }

  // -- talking to the server --------------------------------------------------------------
  async function api(method, path, body) {
    const options = { method, headers: { "X-Run-Timestamp": RUN, Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (e) {
      throw new Error("The review page's server cannot be reached: is `residentview review serve` still running?");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const error = new Error(data && data.error ? data.error : "The server could not answer (" + response.status + ").");
      if (data && data.reload) showReload(error.message);
      throw error;
    }
    return data;
  }

  function say(text, isError) {
    const box = $("message");
    box.textContent = text || "";
    box.classList.toggle("error", !!isError);
  }

  function showReload(text) {
    state.stale = true;
    $("reload-text").textContent = text.charAt(0).toUpperCase() + text.slice(1) + ".";
    $("reload").hidden = false;
    document.querySelectorAll(".buttons button").forEach((b) => (b.disabled = true));
  }

  // -- who is reviewing -------------------------------------------------------------------
  function askReviewer() {
    $("who-name").value = state.reviewer;
    $("who").hidden = false;
    $("who-name").focus();
  }

  function showReviewer() {
    $("reviewer-name").textContent = state.reviewer || "(no name yet)";
  }

  $("who-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("who-name").value.trim();
    if (!name) return;
    state.reviewer = name;
    localStorage.setItem("rv.reviewer", name);
    $("who").hidden = true;
    $("who-name").blur();
    showReviewer();
    if (state.tab === "changes") loadChanges();
  });
  $("change-reviewer").addEventListener("click", askReviewer);

  // -- blind review -----------------------------------------------------------------------
  const blindBox = $("blind");
  blindBox.checked = BLIND_LOCKED || localStorage.getItem("rv.blind") === "1";
  blindBox.disabled = BLIND_LOCKED;
  blindBox.addEventListener("change", () => {
    localStorage.setItem("rv.blind", blindBox.checked ? "1" : "0");
    blindBox.blur();
    loadNext().catch((e) => say(e.message, true));
  });
  const blind = () => blindBox.checked;

  // -- tabs -------------------------------------------------------------------------------
  function showTab(name) {
    state.tab = name;
    document.querySelectorAll("nav [data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
    for (const tab of ["queue", "resident", "changes"]) $("tab-" + tab).hidden = tab !== name;
    if (name === "changes") loadChanges();
  }
  document.querySelectorAll("nav [data-tab]").forEach((b) =>
    b.addEventListener("click", () => {
      b.blur();
      showTab(b.dataset.tab);
    })
  );

  // -- waterfalls -------------------------------------------------------------------------
  function waterfall(wf, title) {
    if (!wf) return el("p", { class: "hint" }, "The model's evidence for this pair cannot be shown (the pair or the model is not in this run's files).");
    const span = wf.hi - wf.lo || 1;
    const at = (v) => ((v - wf.lo) / span) * 100;
    function track(start, end, cls) {
      const left = at(Math.min(start, end));
      const width = Math.max(at(Math.max(start, end)) - left, 0.3);
      return el("div", { class: "wf-track" },
        el("div", { class: "zero", style: { left: at(0) + "%" } }),
        el("div", { class: "bar " + cls, style: { left: left + "%", width: width + "%" } }));
    }
    const rows = wf.bars.map((b) =>
      el("div", { class: "wf-row", dataset: { step: b.name } },
        el("span", {}, b.label), el("span", { class: "level" }, b.level),
        el("span", { class: "weight" }, signed(b.weight)),
        track(b.start, b.end, b.weight >= 0 ? "pos" : "neg")));
    rows.push(el("div", { class: "wf-row total" },
      el("span", {}, "Match weight"), el("span", { class: "level" }, "the sum: above zero leans to one person"),
      el("span", { class: "weight" }, Number(wf.match_weight).toFixed(2)), track(0, wf.match_weight, "final")));
    return el("div", { class: "waterfall" },
      el("h3", {}, title || "Why the model scores it so: what each comparison added (in bits of evidence)"),
      rows,
      wf.no_data.length ? el("p", { class: "hint" }, "No value on one side, so no effect: " + wf.no_data.join(", ") + ".") : null);
  }

  // -- the queue --------------------------------------------------------------------------
  function renderProgress(p) {
    const done = p.total ? (100 * p.decided) / p.total : 0;
    const box = $("progress");
    fill(box,
      el("span", {}, p.decided + " of " + p.total + " pairs decided · " + p.left + " to go" + (p.skipped ? " · " + p.skipped + " skipped" : "")),
      el("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": p.total, "aria-valuenow": p.decided },
        el("div", { style: { width: done + "%" } })));
    box.dataset.decided = p.decided;
  }

  function recordHeading(record, n) {
    return el("th", { scope: "col" }, "Record " + n + ": " + record.source_label + " ",
      el("code", {}, record.record_id),
      record.resident_id ? el("div", { class: "hint" }, "resident " + record.resident_id) : null);
  }

  const MARKS = { agree: "✓ same", partly: "≈ partly", differ: "✗ different", missing: "– missing" };

  function renderPair(pair) {
    const box = $("pair");
    if (!pair) {
      box.removeAttribute("data-review-id");
      const rest = state.skipped.size
        ? [el("p", {}, "Only the pairs you skipped are left."),
          el("button", { type: "button", onclick: () => { state.skipped.clear(); saveSkipped(); loadNext(); } }, "Go back to the skipped pairs")]
        : [el("p", {}, "Every pair in this run's queue has a decision. They take effect at the next `residentview link`, which writes a new queue.")];
      fill(box, el("h2", {}, "The queue is done"), ...rest);
      return;
    }
    box.dataset.reviewId = pair.review_id;
    const meta = [el("span", {}, "Pair " + pair.review_id + " of the queue"),
      pair.reason ? el("span", {}, " · asked because: " + pair.reason) : null];
    if (pair.blind) {
      meta.push(el("span", { class: "score" }, " · blind review: the model's score is hidden"));
    } else {
      meta.push(el("span", { class: "score", dataset: { probability: pair.match_probability } },
        " · the model: " + percent(pair.match_probability) + " likely one person (threshold " + percent(pair.threshold) + "); " +
        (pair.same_resident ? "this run made them one resident" : "this run kept them apart")));
    }
    const rows = pair.fields.map((f) =>
      el("tr", { class: f.state, dataset: { field: f.field } },
        el("th", { scope: "row" }, f.label),
        el("td", { class: "value" + (f.left === null ? " blank" : "") }, f.left === null ? "not given" : f.left),
        el("td", { class: "mark" }, MARKS[f.state]),
        el("td", { class: "value" + (f.right === null ? " blank" : "") }, f.right === null ? "not given" : f.right)));
    fill(box,
      el("p", { class: "meta" }, meta),
      el("table", { class: "side-by-side" },
        el("thead", {}, el("tr", {}, el("th", {}, ""), recordHeading(pair.left, 1), el("th", {}, ""), recordHeading(pair.right, 2))),
        el("tbody", {}, rows)),
      pair.absent.length ? el("p", { class: "absent" }, "Neither record gives: " + pair.absent.join(", ") + ".") : null,
      pair.blind ? null : waterfall(pair.waterfall));
  }

  function saveSkipped() {
    sessionStorage.setItem(SKIPPED_KEY, JSON.stringify([...state.skipped]));
  }

  async function fetchNext() {
    const params = new URLSearchParams();
    if (state.skipped.size) params.set("skip", [...state.skipped].join(","));
    if (blind()) params.set("blind", "1");
    return api("GET", "/api/queue?" + params.toString());
  }

  function showNext(data) {
    state.pair = data.pair;
    state.queueVersion = data.store_version;
    renderProgress(data.progress);
    renderPair(data.pair);
  }

  async function loadNext() {
    showNext(await fetchNext());
  }

  async function decide(decision) {
    if (state.busy || state.stale || !state.pair) return;
    if (!state.reviewer) {
      askReviewer();
      return;
    }
    state.busy = true;
    let data = null;
    try {
      if (decision === "skip") {
        state.skipped.add(state.pair.review_id);
        saveSkipped();
        say("Skipped pair " + state.pair.review_id + ": it stays in the queue.");
      } else {
        try {
          const answer = await api("POST", "/api/decide", {
            review_id: state.pair.review_id, decision, note: $("note").value, reviewer: state.reviewer,
            store_version: state.queueVersion, blind: blind(),
          });
          $("note").value = "";
          say(answer.message);
        } catch (e) {
          say(e.message, true);
          if (state.stale) return;
        }
      }
      data = await fetchNext();
    } catch (e) {
      say(e.message, true);
    } finally {
      state.busy = false;
    }
    if (data) showNext(data);
  }

  document.querySelectorAll("[data-decision]").forEach((b) =>
    b.addEventListener("click", () => {
      b.blur();
      decide(b.dataset.decision);
    })
  );

  document.addEventListener("keydown", (ev) => {
    if (state.tab !== "queue" || ev.ctrlKey || ev.metaKey || ev.altKey || !$("who").hidden) return;
    if (ev.target instanceof Element && ev.target.closest("input, textarea, select, [contenteditable]")) return;
    const decision = KEYS[ev.key.toLowerCase()];
    if (!decision) return;
    ev.preventDefault();
    decide(decision);
  });

  // -- a resident -------------------------------------------------------------------------
  function residentLink(id) {
    return el("button", { type: "button", class: "link", onclick: () => loadResident(id) }, id);
  }

  async function loadResident(id) {
    try {
      const data = await api("GET", "/api/resident/" + encodeURIComponent(id));
      state.resident = data;
      state.residentVersion = data.store_version;
      renderResident(data);
      showTab("resident");
    } catch (e) {
      say(e.message, true);
    }
  }

  async function postResident(path, body, question) {
    if (!state.reviewer) {
      askReviewer();
      return;
    }
    if (!window.confirm(question)) return;
    try {
      const answer = await api("POST", path, Object.assign({ reviewer: state.reviewer, store_version: state.residentVersion }, body));
      say(answer.message);
    } catch (e) {
      say(e.message, true);
      if (state.stale) return;
    }
    await loadResident(state.resident.resident_id);
  }

  function table(headings, rows) {
    return el("table", {}, el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))), el("tbody", {}, rows));
  }

  function renderResident(r) {
    const many = r.records.length > 1;
    const records = r.records.map((rec) =>
      el("div", { class: "card record", dataset: { key: rec.key } },
        el("h4", {}, rec.source_label + " ", el("code", {}, rec.record_id)),
        el("dl", {}, rec.fields.map((f) => [el("dt", {}, f.label), el("dd", {}, f.value)])),
        el("p", { class: "hint" }, many ? "Tied to the resident at " + percent(rec.membership) : "Its only record"),
        many ? el("button", {
          type: "button", class: "split",
          onclick: () => postResident("/api/split", { resident_id: r.resident_id, record: rec.key },
            "Split " + rec.key + " out of resident " + r.resident_id + "?\n\nThis records a non-match between it and each of the " +
            (r.records.length - 1) + " other record(s). It takes effect at the next `residentview link`."),
        }, "Split this record out") : null));

    const households = r.households.length
      ? table(["Household", "Address", "Postcode", "People", "Others living there"], r.households.map((h) =>
        el("tr", {}, el("td", {}, h.household_id), el("td", {}, h.address || ""), el("td", {}, h.postcode || ""),
          el("td", {}, h.size || ""), el("td", {}, (h.other_residents || []).map((o) => [residentLink(o), " "])))))
      : el("p", { class: "hint" }, "No household in this run's files.");

    const addresses = r.addresses.length
      ? table(["Address", "Postcode", "First seen", "Last seen", "From"], r.addresses.map((a) =>
        el("tr", {}, el("td", {}, a.address || ""), el("td", {}, a.postcode || ""), el("td", {}, a.first_seen || "—"),
          el("td", {}, a.last_seen || "—"), el("td", {}, a.sources || (a.current ? "current" : "")))))
      : el("p", { class: "hint" }, "No address on its records.");

    const edgeRow = (e, refused) =>
      el("tr", {},
        el("td", {}, e.left), el("td", {}, e.right, e.other_resident ? [" (resident ", residentLink(e.other_resident), ")"] : ""),
        el("td", {}, percent(e.match_probability)),
        el("td", {}, refused ? "refused: " + (e.refused_by || "") : e.joined ? "joined (at or above the threshold)" : "below the threshold"),
        el("td", {}, el("details", {}, el("summary", {}, "evidence"), waterfall(e.waterfall, " "))));
    const edges = r.edges.length
      ? table(["Record", "Record", "Model", "", ""], r.edges.map((e) => edgeRow(e, false)))
      : el("p", { class: "hint" }, "No scored pair among its records.");
    const refused = r.refused.length
      ? table(["Its record", "Another resident's record", "Model", "Why they are apart", ""], r.refused.map((e) => edgeRow(e, true)))
      : el("p", { class: "hint" }, "None.");

    const decisions = r.decisions.length
      ? table(["Decision", "Records", "By", "When", "Status", "Note"], r.decisions.map((d) =>
        el("tr", {}, el("td", {}, d.decision), el("td", {}, d.left + " / " + d.right), el("td", {}, d.reviewer || "—"),
          el("td", {}, when(d.decided_at)), el("td", {}, d.status), el("td", {}, d.note || ""))))
      : el("p", { class: "hint" }, "None yet.");

    const mergeInput = el("input", { id: "merge-with", placeholder: "resident id, or SOURCE:RECORD_ID of one of its records" });
    const merge = el("form", {
      class: "merge",
      onsubmit: (ev) => {
        ev.preventDefault();
        const other = mergeInput.value.trim();
        if (!other) return;
        postResident("/api/merge", { resident_id: r.resident_id, other },
          "Merge resident " + r.resident_id + " with " + other + "?\n\nThis records a match between one record of each. " +
          "It takes effect at the next `residentview link`.");
      },
    }, el("label", { for: "merge-with" }, "Merge with resident"), mergeInput, el("button", { type: "submit" }, "Merge"));

    $("resident").dataset.residentId = r.resident_id;
    fill($("resident"),
      el("h2", {}, "Resident " + r.resident_id + " · " + r.records.length + " record" + (many ? "s" : "")),
      r.notes.length ? el("p", { class: "hint" }, r.notes.join(" ")) : null,
      el("p", { class: "hint" }, "Splits and merges are recorded as decisions and take effect at the next `residentview link` (or `update`); until then this page shows the resident as the last run left it."),
      el("h3", {}, "Its records"), el("div", { class: "records" }, records),
      el("h3", {}, "Households"), households,
      el("h3", {}, "Addresses over time"), addresses,
      el("h3", {}, "Edges: the scored pairs among its records (" + r.n_edges + ")"), edges,
      el("h3", {}, "Pairs to other residents that clustering refused (" + r.n_refused + ")"), refused,
      el("h3", {}, "Merge"), merge,
      el("h3", {}, "Reviewers' decisions on its records"), decisions);
  }

  $("find").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const query = $("query").value.trim();
    const byName = $("by-name").checked;
    fill($("matches"));
    try {
      const found = await api("POST", "/api/find", { query, by_name: byName });
      if (found.resident_id) {
        await loadResident(found.resident_id);
        return;
      }
      fill($("matches"), found.matches.length
        ? table(["Resident", "Name", "Date of birth", "Records"], found.matches.map((m) =>
          el("tr", {}, el("td", {}, residentLink(m.resident_id)), el("td", {}, m.name), el("td", {}, m.date_of_birth || "—"),
            el("td", {}, m.n_records))))
        : el("p", {}, "No record holds every word of that name."));
    } catch (e) {
      say(e.message, true);
    }
  });

  // -- what changed -----------------------------------------------------------------------
  async function loadChanges() {
    try {
      const params = new URLSearchParams({ reviewer: state.reviewer });
      const data = await api("GET", "/api/changes?" + params.toString());
      renderChanges(data);
    } catch (e) {
      say(e.message, true);
    }
  }

  function renderChanges(data) {
    state.undoable = data.undoable;
    const undo = $("undo");
    if (data.undoable) {
      fill(undo, el("p", {}, "Your last decision on this page: " + data.undoable.description + " (" + when(data.undoable.decided_at) + ")."),
        el("button", { type: "button", id: "undo-button", onclick: undoLast }, "Undo it"));
    } else {
      fill(undo, el("p", { class: "hint" }, state.reviewer ? "Nothing of yours to undo." : "Say who you are to undo your decisions."));
    }
    const rows = data.changes.map((c) =>
      el("tr", { class: c.undone ? "undone" : "", dataset: { decisionId: c.decision_id } },
        el("td", {}, c.decision_id), el("td", {}, when(c.decided_at)), el("td", {}, c.reviewer || "—"),
        el("td", {}, c.decision + (c.undone ? " (undone)" : "")), el("td", {}, c.pair), el("td", {}, c.note || ""),
        el("td", {}, c.origin || "")));
    fill($("changes"),
      el("p", {}, data.n_decisions + " decision" + (data.n_decisions === 1 ? "" : "s") + " in this folder's store" +
        (data.n_decisions > data.changes.length ? ", the latest " + data.changes.length + " shown" : "") + "."),
      data.changes.length ? table(["#", "When", "Who", "Decision", "Records", "Note", "Made by"], rows) : null);
  }

  async function undoLast() {
    if (!state.undoable) return;
    try {
      const answer = await api("POST", "/api/undo", { reviewer: state.reviewer, ids: state.undoable.ids });
      say(answer.message);
    } catch (e) {
      say(e.message, true);
      if (state.stale) return;
    }
    await loadChanges();
  }

  // -- start ------------------------------------------------------------------------------
  $("reload-button").addEventListener("click", () => window.location.reload());
  showReviewer();
  if (!state.reviewer) askReviewer();
  loadNext().catch((e) => say(e.message, true));
})();
