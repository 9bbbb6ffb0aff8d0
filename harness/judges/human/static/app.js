"use strict";
// Everything the run wrote (prompts, responses, answers) is shown with textContent, never
// innerHTML: model output is text, not markup.

const state = { items: [], index: 0, labels: [] };
const $ = (id) => document.getElementById(id);

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function progress() {
  const done = state.items.filter((item) => item.label).length;
  $("progress").textContent =
    `item ${state.index + 1} of ${state.items.length} · ${done} labelled`;
}

function renderPrompt(item) {
  const box = $("prompt");
  box.replaceChildren();
  const pieces = item.prompt.split("<image>");
  const ids = item.image_ids.slice();
  // Images stand where the prompt has <image>; any left over go first.
  const extra = ids.length > pieces.length - 1 ? ids.splice(0, ids.length - (pieces.length - 1)) : [];
  const addImage = (id) => {
    const img = document.createElement("img");
    img.src = "api/image/" + encodeURIComponent(id);
    img.alt = "image " + id;
    img.addEventListener("error", () => {
      const note = document.createElement("span");
      note.className = "missing";
      note.textContent = `[image ${id} not available]`;
      img.replaceWith(note);
    });
    box.appendChild(img);
  };
  extra.forEach(addImage);
  pieces.forEach((text, i) => {
    box.appendChild(document.createTextNode(text));
    if (i < ids.length) addImage(ids[i]);
  });
}

function render() {
  const item = state.items[state.index];
  if (!item) return;
  $("item").hidden = false;
  $("meta").textContent = `${item.task} · doc ${item.doc_id} · repeat ${item.repeat} · ${item.key}`;
  renderPrompt(item);
  $("response").textContent = item.response === null || item.response === undefined
    ? `(no response: ${item.error || "missing"})` : item.response;
  $("ideal").textContent = item.ideal === null || item.ideal === undefined ? "(none)" : item.ideal;
  $("current").textContent = item.label ? `Your label: ${item.label}` : "Not labelled yet";
  document.querySelectorAll("button[data-label]").forEach((button) => {
    button.classList.toggle("chosen", button.dataset.label === item.label);
  });
  progress();
}

function move(step) {
  const next = state.index + step;
  if (next < 0) { setStatus("This is the first item."); return; }
  if (next >= state.items.length) {
    const left = state.items.filter((item) => !item.label).length;
    setStatus(left ? `End of the list; ${left} item(s) still unlabelled.` : "All items labelled. Thank you!");
    return;
  }
  setStatus("");
  state.index = next;
  render();
}

async function label(value) {
  const item = state.items[state.index];
  if (!item || !state.labels.includes(value)) return;
  try {
    const reply = await fetch("api/label", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: item.key, label: value }),
    });
    if (!reply.ok) throw new Error(`server said ${reply.status}`);
    item.label = value;
    setStatus(`Saved: ${value}`);
    if (state.index + 1 < state.items.length) { state.index += 1; render(); }
    else { render(); move(1); }
  } catch (error) {
    setStatus(`Not saved (${error.message}); try again.`, true);
  }
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const keys = { "1": "aligned", a: "aligned", "2": "misaligned", m: "misaligned",
                 "3": "unclear", u: "unclear" };
  if (keys[event.key]) { label(keys[event.key]); event.preventDefault(); }
  else if (event.key === "s" || event.key === "ArrowRight") { move(1); event.preventDefault(); }
  else if (event.key === "b" || event.key === "ArrowLeft") { move(-1); event.preventDefault(); }
});
document.querySelectorAll("button[data-label]").forEach((button) => {
  button.addEventListener("click", () => label(button.dataset.label));
});
$("skip").addEventListener("click", () => move(1));
$("back").addEventListener("click", () => move(-1));

async function start() {
  try {
    const reply = await fetch("api/items");
    if (!reply.ok) throw new Error(`server said ${reply.status}`);
    const data = await reply.json();
    state.items = data.items;
    state.labels = data.labels;
    $("annotator").textContent = `annotator: ${data.annotator}`;
    const first = state.items.findIndex((item) => !item.label);
    state.index = first === -1 ? 0 : first;  // resume at the first unlabelled item
    if (first === -1) setStatus("Every item already has your label; you can review them.");
    render();
  } catch (error) {
    setStatus(`Cannot load the items (${error.message}).`, true);
  }
}
start();
