// The run viewer. Every string from a run is put in the page with textContent, never as
// markup, so a response such as <script> is shown, not run. Data come from api/view when
// served, or from data.js (window.VIEW_DATA) in a static export.
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function option(select, value) {
  const o = el("option", value);
  o.value = value;
  select.appendChild(o);
}

function imageSrc(data, id) {
  if (data.image_files) return data.image_base + (data.image_files[id] || "");
  return data.image_base + id;
}

function renderRun(data, item, index) {
  const run = item.runs[index];
  const box = el("div", null, "run");
  box.appendChild(el("h3", data.runs[index].name + (data.runs[index].model ? " (" + data.runs[index].model + ")" : "")));
  if (!run) {
    box.appendChild(el("p", "not in this run", "meta"));
    return box;
  }
  box.appendChild(el("div", "Response", "meta"));
  box.appendChild(el("pre", run.error ? "[error] " + run.error : run.response, "response"));
  if (run.filtered !== null && run.filtered !== undefined && run.filtered !== run.response) {
    box.appendChild(el("div", "After the task's filter", "meta"));
    box.appendChild(el("pre", run.filtered));
  }
  const table = el("table", null, "verdicts");
  const head = el("tr");
  ["judge", "verdict", "label", "reason"].forEach((h) => head.appendChild(el("th", h)));
  table.appendChild(head);
  Object.keys(run.verdicts).sort().forEach((judge) => {
    const v = run.verdicts[judge];
    const row = el("tr");
    row.appendChild(el("td", judge));
    row.appendChild(el("td", v.outcome, v.outcome));
    row.appendChild(el("td", v.label));
    row.appendChild(el("td", v.reason));
    table.appendChild(row);
  });
  if (run.hand) {
    const row = el("tr");
    row.appendChild(el("td", "hand labels (" + run.annotators + ")"));
    row.appendChild(el("td", run.hand, run.hand));
    row.appendChild(el("td", ""));
    row.appendChild(el("td", ""));
    table.appendChild(row);
  }
  box.appendChild(table);
  return box;
}

function renderItem(data, item) {
  const card = el("article", null, "item" + (item.differs ? " differs" : ""));
  card.dataset.key = item.key;
  const fields = Object.keys(item.fields).map((k) => k + ": " + item.fields[k]).join(" · ");
  card.appendChild(el("p", item.key + (fields ? " · " + fields : "") + (item.differs ? " · runs differ" : ""), "meta"));
  const images = el("div", null, "images");
  item.image_ids.forEach((id) => {
    if (data.images.indexOf(id) < 0) return;
    const img = document.createElement("img");
    img.src = imageSrc(data, id);
    img.alt = "prompt image " + id;
    images.appendChild(img);
  });
  card.appendChild(images);
  card.appendChild(el("div", "Prompt", "meta"));
  card.appendChild(el("pre", item.prompt, "prompt"));
  card.appendChild(el("div", "Ideal answer", "meta"));
  card.appendChild(el("pre", item.ideal, "ideal"));
  const columns = el("div", null, "columns");
  item.runs.forEach((_, index) => columns.appendChild(renderRun(data, item, index)));
  card.appendChild(columns);
  return card;
}

function matches(item, f) {
  if (f.task && item.task !== f.task) return false;
  if (f.differs && !item.differs) return false;
  if (f.disagree && !item.disagree) return false;
  for (const name of Object.keys(f.fields)) {
    if (f.fields[name] && item.fields[name] !== f.fields[name]) return false;
  }
  if (f.judge || f.outcome) {
    return item.runs.some((run) => run && Object.keys(run.verdicts).some((judge) =>
      (!f.judge || judge === f.judge) && (!f.outcome || run.verdicts[judge].outcome === f.outcome)));
  }
  return true;
}

function start(data) {
  document.getElementById("runs").textContent = data.runs.map((r) => r.name).join("  vs  ");
  const task = document.getElementById("f-task");
  data.tasks.forEach((t) => option(task, t));
  const judge = document.getElementById("f-judge");
  data.judges.forEach((j) => option(judge, j));
  const holder = document.getElementById("field-filters");
  const fieldSelects = {};
  Object.keys(data.fields).forEach((name) => {
    const label = el("label", name + " ");
    const select = document.createElement("select");
    select.id = "f-field-" + name;
    option(select, "");
    select.options[0].textContent = "any";
    data.fields[name].forEach((v) => option(select, v));
    label.appendChild(select);
    holder.appendChild(label);
    fieldSelects[name] = select;
  });
  if (data.runs.length > 1) document.getElementById("differs-label").hidden = false;
  const list = document.getElementById("items");
  const cards = data.items.map((item) => [item, renderItem(data, item)]);
  function apply() {
    const f = {
      task: task.value, judge: judge.value,
      outcome: document.getElementById("f-outcome").value,
      disagree: document.getElementById("f-disagree").checked,
      differs: document.getElementById("f-differs").checked, fields: {},
    };
    Object.keys(fieldSelects).forEach((name) => { f.fields[name] = fieldSelects[name].value; });
    list.replaceChildren();
    let shown = 0;
    cards.forEach(([item, card]) => {
      if (matches(item, f)) { list.appendChild(card); shown += 1; }
    });
    document.getElementById("count").textContent = shown + " of " + data.items.length + " samples";
  }
  document.getElementById("filters").addEventListener("change", apply);
  apply();
}

if (window.VIEW_DATA) {
  start(window.VIEW_DATA);
} else {
  fetch("api/view").then((r) => r.json()).then(start, (e) => {
    document.getElementById("count").textContent = "could not load the run: " + e;
  });
}
