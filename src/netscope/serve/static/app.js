// netscope serve: draw or pick an image, ask the local server what the network makes of it.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, pixels: null, predicted: null, busy: false, again: false, twin: null };

function showError(message) { $("status").textContent = message || ""; }

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    throw new Error(`${response.status}: ${detail || response.statusText}`);
  }
  return data;
}

// ---- drawing ------------------------------------------------------------------------------
const canvas = $("canvas");
const pen = canvas.getContext("2d", { willReadFrequently: true });

function clearCanvas() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, canvas.width, canvas.height);
}

function startDrawing() {
  let drawing = false, last = null, lastUpdate = 0;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true; last = at(e); canvas.setPointerCapture(e.pointerId);
    if (state.source !== "drawing") { clearCanvas(); state.source = "drawing"; }
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const point = at(e); stroke(last, point); last = point;
    if (performance.now() - lastUpdate > 300) { lastUpdate = performance.now(); fromCanvas(); }
  });
  const stop = () => { if (drawing) { drawing = false; fromCanvas(); } };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
}

function stroke(from, to) {
  pen.strokeStyle = "#fff"; pen.lineWidth = 22; pen.lineCap = "round"; pen.lineJoin = "round";
  pen.beginPath(); pen.moveTo(from[0], from[1]); pen.lineTo(to[0], to[1]); pen.stroke();
}

// MNIST digits are shrunk to fit 20×20 and centred by their centre of mass in 28×28.
function canvasToPixels() {
  const [channels, height, width] = state.info.image_shape;
  const data = pen.getImageData(0, 0, canvas.width, canvas.height).data;
  let x0 = canvas.width, y0 = canvas.height, x1 = -1, y1 = -1;
  for (let y = 0; y < canvas.height; y++) for (let x = 0; x < canvas.width; x++) {
    if (data[4 * (y * canvas.width + x)] > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (x1 < 0) return null;
  const box = Math.max(x1 - x0 + 1, y1 - y0 + 1), inner = Math.round(Math.min(height, width) * 20 / 28);
  const scale = inner / box, w = Math.max(1, Math.round((x1 - x0 + 1) * scale)), h = Math.max(1, Math.round((y1 - y0 + 1) * scale));
  const small = document.createElement("canvas"); small.width = w; small.height = h;
  const sctx = small.getContext("2d", { willReadFrequently: true });
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, 0, 0, w, h);
  const s = sctx.getImageData(0, 0, w, h).data;
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const v = s[4 * (y * w + x)]; mass += v; mx += v * x; my += v * y; }
  const dx = Math.round(width / 2 - (mx / mass + 0.5)), dy = Math.round(height / 2 - (my / mass + 0.5));
  const grey = new Float32Array(height * width);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const tx = x + dx, ty = y + dy;
    if (tx >= 0 && tx < width && ty >= 0 && ty < height) grey[ty * width + tx] = s[4 * (y * w + x)] / 255;
  }
  return Array.from({ length: channels }, () => Array.from({ length: height }, (_, y) => Array.from(grey.slice(y * width, (y + 1) * width))));
}

function fromCanvas() {
  const pixels = canvasToPixels();
  if (!pixels) return;
  state.pixels = pixels;
  $("source").textContent = "What the network sees: your drawing, shrunk and centred the way MNIST digits are.";
  update();
}

function paint(target, pixels) {   // C×H×W in [0, 1] -> an upscaled picture on a canvas
  const [c, h, w] = [pixels.length, pixels[0].length, pixels[0][0].length];
  const image = new ImageData(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < 3; k++) {
    image.data[4 * (y * w + x) + k] = 255 * pixels[Math.min(k, c - 1)][y][x];
    image.data[4 * (y * w + x) + 3] = 255;
  }
  const tmp = document.createElement("canvas"); tmp.width = w; tmp.height = h;
  tmp.getContext("2d").putImageData(image, 0, 0);
  const ctx = target.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, target.width, target.height);
}

function setPixels(pixels, source) {
  state.pixels = pixels; state.source = source;
  paint(canvas, pixels);
  update();
}

// ---- asking the server ---------------------------------------------------------------------
async function update() {
  if (!state.pixels) return;
  if (state.busy) { state.again = true; return; }
  state.busy = true; state.again = false;
  paint($("seen"), state.pixels);
  hideTwin();
  $("explain-img").classList.add("stale");  // until the map for this image arrives
  try {
    const body = { image: state.pixels, checkpoint: $("checkpoint").value };
    const result = await api("/api/predict", body);
    showPrediction(result);
    showFeatures(result.features);
    await explain();
    showError("");
  } catch (err) { showError(err.message); }
  state.busy = false;
  if (state.again) update();
}

function showPrediction(result) {
  const classes = state.info.classes, probs = result.probabilities, top = result.predicted;
  state.predicted = top;
  const p = $("prediction");
  p.textContent = `${classes[top]}  (${(100 * probs[top]).toFixed(1)} %)`;
  p.dataset.class = String(top);
  $("bars").innerHTML = "";
  probs.forEach((prob, k) => {
    const row = document.createElement("div");
    row.className = "bar" + (k === top ? " top" : "");
    row.innerHTML = `<span></span><div class="track"><div class="fill"></div></div><span class="pct"></span>`;
    row.children[0].textContent = classes[k];
    row.querySelector(".fill").style.width = `${(100 * prob).toFixed(1)}%`;
    row.children[2].textContent = `${(100 * prob).toFixed(1)} %`;
    $("bars").appendChild(row);
  });
  $("twin-button").disabled = false;
}

function showFeatures(features) {
  const box = $("features"); box.innerHTML = "";
  for (const f of features) {
    const card = document.createElement("div"); card.className = "layer";
    const title = document.createElement("h3");
    title.textContent = f.layer + " ";
    const shape = document.createElement("span");
    shape.textContent = f.shape.join("×") + (f.cmap === "RdBu_r" ? `  ±${f.high.toPrecision(2)}` : `  0…${f.high.toPrecision(2)}`);
    title.appendChild(shape);
    const img = document.createElement("img"); img.src = f.png; img.alt = `feature maps of ${f.layer}`;
    card.append(title, img); box.appendChild(card);
  }
}

async function explain() {
  const method = $("explain-method").value;
  const result = await api("/api/explain", { image: state.pixels, checkpoint: $("checkpoint").value, method });
  $("explain-img").src = result.png;
  $("explain-img").classList.remove("stale");
  $("explain-img").dataset.target = String(result.target);
  const name = state.info.classes[result.target];
  $("explain-caption").textContent = method === "saliency"
    ? `How strongly each pixel moves the score of "${name}" (bright = strong).`
    : `Probability of "${name}" with a grey square over each spot: dark = that spot matters.`;
}

function hideTwin() { $("twin").hidden = true; $("use-twin").hidden = true; }

async function makeTwin() {
  if (!state.pixels) return;
  const button = $("twin-button");
  button.disabled = true; button.textContent = "Attacking…";
  try {
    const result = await api("/api/twin", {
      image: state.pixels, checkpoint: $("checkpoint").value,
      method: $("twin-method").value, eps: Number($("eps").value),
    });
    const classes = state.info.classes, prob = result.probabilities[result.predicted];
    $("twin-img").src = result.adversarial_png;
    $("diff-img").src = result.difference_png;
    const caption = $("twin-prediction");
    caption.dataset.class = String(result.predicted);
    const kept = (100 * result.probabilities[result.original]).toFixed(0);
    const verdict = document.createElement("b");
    verdict.textContent = result.success
      ? `Read as ${classes[result.predicted]} (${(100 * prob).toFixed(0)} %), not ${classes[result.original]}.`
      : `The attack failed: still ${classes[result.predicted]} (${(100 * prob).toFixed(0)} %).`;
    const note = result.success
      ? ` ${classes[result.original]} keeps ${kept} %` + (result.method === "deepfool" ? ": DeepFool stops just past the decision boundary." : ".")
      : ($("twin-method").selectedOptions[0].dataset.budget === "true" ? " Try a larger ε." : "");
    caption.replaceChildren(verdict, note);
    const scaled = result.gain > 1.05 ? `, scaled ×${result.gain.toPrecision(2)} to full contrast` : "";
    $("diff-caption").textContent = `Difference${scaled}: red brighter, blue darker. ` +
      `L2 ${result.l2.toFixed(2)}, largest pixel change ${result.linf.toFixed(2)}.`;
    state.twin = result.image;
    $("twin").hidden = false; $("use-twin").hidden = false;
    showError("");
  } catch (err) { showError(err.message); }
  button.disabled = false; button.textContent = "Adversarial twin";
}

async function loadTest(index) {
  try {
    const result = await api(`/api/test-image?index=${index}`);
    $("index").value = result.index;
    setPixels(result.image, "test");
    $("source").textContent = `Test image #${result.index}, labelled "${state.info.classes[result.label]}".`;
  } catch (err) { showError(err.message); }
}

async function start() {
  clearCanvas();
  startDrawing();
  try {
    state.info = await api("/api/info");
  } catch (err) { showError(`cannot reach the netscope server (${err.message})`); return; }
  const info = state.info;
  $("run-name").textContent = `${info.model} on ${info.data} · run ${info.run}`;
  const select = $("checkpoint");
  for (const name of info.checkpoints) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name === "model.safetensors" ? "final (model.safetensors)" : name.replace("checkpoints/", "").replace(".safetensors", "").replace("_", " ");
    select.appendChild(option);
  }
  select.value = info.checkpoint;
  for (const attack of info.attacks) {  // every per-image attack netscope knows
    const option = document.createElement("option");
    option.value = attack.name;
    option.textContent = attack.title;
    option.dataset.budget = String(attack.budget);
    $("twin-method").appendChild(option);
  }
  $("twin-method").value = "deepfool";
  $("index").max = (info.test_size || 1) - 1;
  select.addEventListener("change", update);
  $("explain-method").addEventListener("change", () => state.pixels && explain().catch((e) => showError(e.message)));
  $("clear").addEventListener("click", () => { clearCanvas(); state.source = "drawing"; });
  $("random").addEventListener("click", () => loadTest(Math.floor(Math.random() * (info.test_size || 1))));
  $("load").addEventListener("click", () => loadTest(Number($("index").value)));
  $("twin-button").addEventListener("click", makeTwin);
  $("twin-method").addEventListener("change", () => {
    $("eps-label").hidden = $("twin-method").selectedOptions[0].dataset.budget !== "true";
  });
  $("use-twin").addEventListener("click", () => { setPixels(state.twin, "twin"); $("source").textContent = "The adversarial twin, fed back in."; });
}

start();
