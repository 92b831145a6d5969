
// ---- bars.js: the view (appended to softmax.mjs, whose functions it uses) ----
// Streamlit calls the default export on mount and again whenever Python sends new data; the DOM
// and the decoded logits are kept per host element, so a rerun with the same row costs nothing.
const views = new WeakMap();
const REPORT_DELAY_MS = 250; // arrow keys fire "change" per step: report once the user pauses

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text; // token text is text, never HTML
  return node;
}

function percent(p) {
  return p >= 0.0005 ? `${(p * 100).toFixed(1)}%` : p > 0 ? "<0.1%" : "0";
}

function signed(x, digits, scale = 1, unit = "") {
  const s = (x * scale).toFixed(digits);
  return (s.startsWith("-") ? s : `+${s}`) + unit;
}

function metric(parent, label) {
  const box = el("div", "xr-metric");
  box.append(el("div", "xr-metric-label", label));
  const value = el("div", "xr-metric-value");
  const delta = el("div", "xr-metric-delta");
  box.append(value, delta);
  parent.append(box);
  return { value, delta };
}

function build(parent) {
  const root = el("div", "xr-temperature");
  const control = el("label", "xr-control");
  const slider = el("input");
  slider.type = "range";
  slider.min = "0";
  const shown = el("output", "xr-t");
  control.append(el("span", "xr-control-label", "Temperature"), slider, shown);
  const help = el("div", "xr-help", "Low = sharper, high = flatter, 0 = always the most likely token.");
  const metrics = el("div", "xr-metrics");
  const view = {
    root, slider, shown,
    entropy: metric(metrics, "Entropy"), top: metric(metrics, "Most likely"), rest: metric(metrics, "All other tokens"),
    legend: el("div", "xr-legend"), bars: el("div", "xr-bars"), timer: null, reported: null, dataT: null,
  };
  root.append(control, help, metrics, view.legend, view.bars);
  parent.append(root);
  return view;
}

function setRows(view, labels, ids) {
  view.bars.replaceChildren();
  view.rows = [...labels, "all other tokens"].map((label, r) => {
    const row = el("div", r < ids.length ? "xr-row" : "xr-row xr-rest");
    const name = el("div", "xr-label", label);
    name.title = r < ids.length ? `${label}  (id ${ids[r]})` : "every token outside the bars";
    const track = el("div", "xr-track");
    const fill = el("div", "xr-fill");
    const ghost = el("div", "xr-ghost");
    track.append(fill, ghost);
    const value = el("div", "xr-value");
    row.append(name, track, value);
    view.bars.append(row);
    return { fill, ghost, value };
  });
}

function draw(view) {
  const t = Number(view.slider.value);
  const { logits, order, ids, ghost, topK, topP } = view;
  const now = barNumbers(probabilities(logits, order, t, topK, topP), ids);
  view.shown.textContent = t.toFixed(2);
  view.entropy.value.textContent = `${now.entropy.toFixed(2)} bits`;
  view.entropy.delta.textContent = `${signed(now.entropy - ghost.entropy, 2)} vs T = 1`;
  view.top.value.textContent = percent(now.probs[0]);
  view.top.delta.textContent = `${signed(now.probs[0] - ghost.probs[0], 1, 100, " pp")} vs T = 1`;
  view.rest.value.textContent = percent(now.rest);
  view.legend.textContent = `Bars: T = ${t.toFixed(2)} · outlines: T = 1 (the model's own) · every number over all ${logits.length.toLocaleString("en")} tokens`;
  const p = [...now.probs, now.rest];
  const g = [...ghost.probs, ghost.rest];
  const scale = Math.min(1.2, Math.max(...p, ...g) * 1.15 + 0.02);
  view.rows.forEach((row, r) => {
    row.fill.style.width = `${(100 * p[r]) / scale}%`;
    row.ghost.style.width = `${(100 * g[r]) / scale}%`;
    row.value.textContent = percent(p[r]);
  });
  view.root.dataset.temperature = t.toFixed(2);
}

export default function temperatureBars({ data, parentElement, setTriggerValue }) {
  let view = views.get(parentElement);
  if (!view) {
    view = build(parentElement);
    views.set(parentElement, view);
    view.slider.addEventListener("input", () => draw(view));
    view.slider.addEventListener("change", () => {
      clearTimeout(view.timer);
      view.timer = setTimeout(() => {
        view.timer = null;
        view.reported = Number(view.slider.value);
        setTriggerValue("temperature", view.reported);
      }, REPORT_DELAY_MS);
    });
  }
  if (view.b64 !== data.logits) {
    view.b64 = data.logits;
    view.logits = decodeLogits(data.logits);
    view.order = rankByLogit(view.logits);
    view.ghost = barNumbers(probabilities(view.logits, view.order, 1), data.ids);
  } else if (view.ids.join() !== data.ids.join()) {
    view.ghost = barNumbers(probabilities(view.logits, view.order, 1), data.ids);
  }
  view.ids = data.ids;
  view.topK = data.top_k;
  view.topP = data.top_p;
  setRows(view, data.labels, data.ids);
  view.slider.max = String(data.max);
  // Python's value wins unless it is the echo of our own report or a report is still pending.
  const pending = view.timer !== null || data.temperature === view.reported;
  if (data.temperature !== view.dataT && !pending) {
    const onGrid = Math.abs(data.temperature / data.step - Math.round(data.temperature / data.step)) < 1e-9;
    view.slider.step = onGrid ? String(data.step) : "0.01"; // a link's 0.33 must not snap to 0.35
    view.slider.value = String(data.temperature);
  }
  view.dataT = data.temperature;
  draw(view);
}
