// netscope serve, card 5: a slider over the run's per-epoch checkpoints (GET /api/growth).
"use strict";

const growth = { checkpoints: [], busy: false, again: false };

function growthCell(title, src, alt) {
  const figure = document.createElement("figure");
  const img = document.createElement("img"); img.src = src; img.alt = alt;
  const caption = document.createElement("figcaption"); caption.textContent = title;
  figure.append(img, caption);
  return figure;
}

function showGrowth(result) {
  const view = document.getElementById("growth-view");
  const filters = document.createElement("div"); filters.className = "layer";
  const heading = document.createElement("h3");
  heading.textContent = `${result.filters.layer} filters `;
  const scale = document.createElement("span"); scale.textContent = `±${result.filters.limit.toPrecision(2)}`;
  heading.appendChild(scale);
  const img = document.createElement("img"); img.src = result.filters.png; img.alt = "first-layer filters";
  filters.append(heading, img);
  const units = document.createElement("div"); units.className = "pair";
  for (const unit of result.units) {
    const card = document.createElement("div"); card.className = "layer growth-unit";
    const title = document.createElement("h3");
    title.textContent = `${unit.layer} unit ${unit.unit} `;
    const value = document.createElement("span"); value.textContent = `max ${unit.value.toFixed(1)}`;
    title.appendChild(value);
    const pair = document.createElement("div"); pair.className = "pair";
    pair.append(growthCell("patch", unit.patch_png, "strongest patch"),
                growthCell("projection", unit.projection_png, "deconvnet projection"));
    card.append(title, pair); units.appendChild(card);
  }
  view.replaceChildren(filters, units);
}

async function updateGrowth() {
  if (growth.busy) { growth.again = true; return; }
  growth.busy = true;
  const checkpoint = growth.checkpoints[Number(document.getElementById("growth-epoch").value)];
  const label = document.getElementById("growth-label");
  label.textContent = checkpoint.epoch === null ? "final" : String(checkpoint.epoch);
  try {
    const response = await fetch(`/api/growth?checkpoint=${encodeURIComponent(checkpoint.name)}`);
    const result = await response.json();
    if (!response.ok) throw new Error(`${response.status}: ${result.detail || response.statusText}`);
    showGrowth(result);
  } catch (err) { showError(err.message); }
  growth.busy = false;
  if (growth.again) { growth.again = false; updateGrowth(); }
}

async function startGrowth() {
  const card = document.getElementById("growth-card");
  let info;
  try { info = await (await fetch("/api/info")).json(); } catch (err) { card.hidden = true; return; }
  growth.checkpoints = info.checkpoints
    .map((name) => ({ name, match: /^checkpoints\/epoch_(\d+)\.safetensors$/.exec(name) }))
    .filter((c) => c.match)
    .map((c) => ({ name: c.name, epoch: Number(c.match[1]) }));
  if (growth.checkpoints.length < 2) { card.hidden = true; return; }  // no per-epoch weights kept
  const slider = document.getElementById("growth-epoch");
  slider.max = growth.checkpoints.length - 1;
  slider.value = slider.max;
  slider.addEventListener("input", updateGrowth);
  updateGrowth();
}

startGrowth();
