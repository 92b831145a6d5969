// ---- chart.js: one plotly figure per host element (THEME and BASE_CONFIG are prepended by Python) ----
// Streamlit calls the default export on mount and again on every rerun. The element is kept, so an
// unchanged figure costs nothing and a new one is a single Plotly.react on the same plot, where
// st.plotly_chart mounts a new element per figure and draws it two or three times. A chart out of
// sight (below the fold, in a hidden tab) is drawn when it comes within NEAR of the window: the
// charts a person sees first do not wait for the ones further down. Heatmap cell text is painted on a
// canvas (see liftCellText); the modebar's PNG and SVG buttons export the figure with that text (withImageButtons).
const views = new WeakMap();
const NEAR = "400px 0px";
const LINE_SPACING = 1.3; // plotly's: a one-line cell text sits 0.35 em below the cell's centre

function libraryUrl(path) {
  // Streamlit serves component files under <base>/component/ and its own bundle under <base>/static/.
  const own = document.querySelector('script[src*="/static/js/"]');
  const base = own ? own.src.slice(0, own.src.indexOf("static/js/")) : new URL("./", document.baseURI).href;
  return base + path;
}

function loadPlotly(path) {
  // One <script> per page, shared by every chart (plotly.js sets window.Plotly).
  if (!window.__xrayPlotly) {
    window.__xrayPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = libraryUrl(path);
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { window.__xrayPlotly = null; reject(new Error(`could not load ${path}`)); };
      document.head.appendChild(script);
    });
  }
  return window.__xrayPlotly;
}

function themed(figure) {
  // The look st.plotly_chart gives a figure in the light theme: its template, bold titles, full width.
  const layout = figure.layout || {};
  if (!layout.template) layout.template = THEME;
  const title = layout.title;
  if (title && typeof title.text === "string" && title.text && !title.text.startsWith("<b>")) {
    title.text = `<b>${title.text}</b>`;
  }
  delete layout.width;
  layout.autosize = true;
  figure.layout = layout;
  return figure;
}

function clickedPoints(event) {
  // Plain numbers and strings only: what the page needs to know which mark was clicked.
  return event.points.map((p) => ({
    x: p.x, y: p.y, customdata: p.customdata === undefined ? null : p.customdata,
    curve_number: p.curveNumber, point_index: p.pointIndex === undefined ? p.pointNumber : p.pointIndex,
  }));
}

function view(parentElement) {
  let v = views.get(parentElement);
  if (!v) {
    const div = document.createElement("div");
    div.className = "xray-chart";
    div.style.width = "100%";
    parentElement.appendChild(div);
    v = { div, spec: null, bound: false, trigger: null };
    // Plotly follows window resizes only; a chart drawn in a hidden tab or a column that changes
    // width must follow its own element.
    v.observer = new ResizeObserver(() => {
      const full = div._fullLayout;
      if (window.Plotly && full && div.clientWidth > 0 && Math.abs(full.width - div.clientWidth) > 1) {
        window.Plotly.Plots.resize(div);
      }
    });
    v.observer.observe(div);
    v.visible = false; // until the first intersection report, which comes right after observe()
    v.pending = null; // the latest figure's draw, waiting for the chart to come into sight
    v.sight = new IntersectionObserver((entries) => {
      v.visible = entries[entries.length - 1].isIntersecting;
      if (v.visible && v.pending) {
        const work = v.pending;
        v.pending = null;
        work();
      }
    }, { rootMargin: NEAR });
    v.sight.observe(div);
    views.set(parentElement, v);
  }
  return v;
}

function cleanup(parentElement) {
  // Called by Streamlit when the element leaves the page: free plotly's listeners and memory.
  return () => {
    const v = views.get(parentElement);
    if (!v) return;
    v.observer.disconnect();
    v.sight.disconnect();
    if (window.Plotly) window.Plotly.purge(v.div);
    views.delete(parentElement);
  };
}

export default function plotlyChart({ data, parentElement, setTriggerValue }) {
  if (data.figure === null) { // preload(): fetch and parse plotly.js now, draw nothing
    loadPlotly(data.library).catch(() => {});
    return undefined;
  }
  const v = view(parentElement);
  v.trigger = setTriggerValue;
  v.filename = data.filename || "chart"; // the downloads' name, made safe by Python (file_name)
  if (v.spec === data.figure) return cleanup(parentElement);
  v.spec = data.figure;
  const figure = themed(JSON.parse(data.figure));
  if (data.clicks && !figure.layout.hovermode) figure.layout.hovermode = "closest"; // clicks need a hovered point
  v.cellText = liftCellText(figure);
  const config = { ...BASE_CONFIG, ...(data.config || {}) };
  v.div.style.minHeight = `${figure.layout.height || 450}px`; // plotly's default height: no jump when drawn
  whenInSight(v, () => draw(v, data, figure, config));
  return cleanup(parentElement);
}

function whenInSight(v, work) {
  v.pending = work;
  if (v.visible) {
    v.pending = null;
    work();
  }
}

function draw(v, data, figure, config) {
  loadPlotly(data.library).then((Plotly) => {
    if (v.spec !== data.figure) return null; // a newer figure arrived while plotly.js loaded
    return Plotly.react(v.div, figure.data, figure.layout, withImageButtons(v, config)).then(() => {
      if (data.clicks && !v.bound) {
        v.bound = true;
        v.div.on("plotly_click", (event) => v.trigger("click", clickedPoints(event)));
      }
      if (!v.painting) { // zoom, pan, resize and every later draw move the cells: paint their text again
        v.painting = true;
        v.div.on("plotly_afterplot", () => schedulePaint(v));
        v.div.on("plotly_relayout", () => schedulePaint(v));
      }
      schedulePaint(v);
    });
  }).catch((error) => {
    v.div.textContent = `The chart could not be drawn: ${error.message}`;
  });
}

// ---- heatmap cell text on a canvas ----
// Plotly draws each heatmap cell's text as its own SVG element, styled and measured one by one: the
// logit lens's 40 x 31 cells took 0.3-0.4 s of the browser per draw (bench/HISTORY.md, 2026-11-26 seventh pass). The same texts,
// at the same places, font and colours (plotly's rules, below), painted on one canvas laid right over
// the plot's layer, take a few ms. Only plain texts shown whole ("%{text}") are lifted.

function liftCellText(figure) {
  // Heatmap traces whose cells show their plain text: plotly keeps the text (hover templates read
  // it) but no longer draws it; returns [{index, font}] for paintCellText.
  const lifted = [];
  (figure.data || []).forEach((trace, index) => {
    if (trace.type !== "heatmap" || trace.texttemplate !== "%{text}" || !Array.isArray(trace.text)) return;
    if (trace.text.some((row) => Array.isArray(row) && row.some((t) => typeof t === "string" && t.includes("<")))) {
      return; // markup (<b>, <br>) is plotly's to draw
    }
    lifted.push({ index, font: trace.textfont || {} });
    delete trace.texttemplate;
  });
  return lifted;
}

function withImageButtons(v, config) {
  // plotly's camera button exports what plotly draws, which lacks the lifted cell text, and only as PNG:
  // ours export the figure with its text, as PNG (the camera) and as SVG, where each cell's text is a
  // real <text> element. One pair per chart: new buttons at each draw would make every Plotly.react a
  // full replot.
  v.imageButtons = v.imageButtons || [
    { name: "toImageWithText", title: "Download plot as a png", icon: window.Plotly.Icons.camera,
      click: (gd) => downloadWithText(v, gd, "png") },
    { name: "toSvgWithText", title: "Download plot as SVG", icon: window.Plotly.Icons.disk,
      click: (gd) => downloadWithText(v, gd, "svg") },
  ];
  return {
    ...config,
    modeBarButtonsToRemove: [...(config.modeBarButtonsToRemove || []), "toImage"],
    modeBarButtonsToAdd: [...(config.modeBarButtonsToAdd || []), ...v.imageButtons],
  };
}

function downloadWithText(v, gd, format) {
  // The figure as drawn (zoom and all, at its size on screen), lifted cells showing their text again.
  const lifted = new Set((v.cellText || []).map((c) => c.index));
  const data = gd.data.map((trace, i) => (lifted.has(i) ? { ...trace, texttemplate: "%{text}" } : trace));
  const full = gd._fullLayout;
  const size = { width: full.width, height: full.height };
  return window.Plotly.downloadImage({ data, layout: { ...gd.layout, ...size } },
    { format, filename: v.filename || "chart", ...size })
    .catch((error) => console.error(`The ${format} export failed:`, error));
}

function schedulePaint(v) {
  // One paint per frame, however many of plotly's events asked for it.
  if (v.paintQueued) return;
  v.paintQueued = true;
  requestAnimationFrame(() => {
    v.paintQueued = false;
    paintCellText(v);
  });
}

function paintCellText(v) {
  const full = v.div._fullLayout;
  const paper = full && full._paper && full._paper.node(); // the plot's own layer, where plotly puts cell text
  if (!v.cellText || !v.cellText.length || !paper || !v.div.calcdata) {
    if (v.canvas) v.canvas.remove();
    return;
  }
  const canvas = v.canvas || (v.canvas = textCanvas());
  if (canvas.previousSibling !== paper) paper.after(canvas); // above the cells, below colour bar, modebar and hover
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(full.width * ratio);
  canvas.height = Math.round(full.height * ratio);
  canvas.style.width = `${full.width}px`;
  canvas.style.height = `${full.height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.textAlign = "center";
  for (const { index, font } of v.cellText) {
    const cd = v.div.calcdata[index] && v.div.calcdata[index][0];
    const trace = cd && cd.trace;
    const plot = trace && full._plots[trace.xaxis + trace.yaxis];
    if (!plot || trace.visible !== true || !cd.text) continue;
    paintTrace(ctx, cd, trace, plot.xaxis, plot.yaxis, font, full);
  }
}

function textCanvas() {
  const canvas = document.createElement("canvas");
  canvas.className = "xray-cell-text";
  canvas.style.position = "absolute";
  canvas.style.top = "0";
  canvas.style.left = "0";
  canvas.style.pointerEvents = "none"; // hover, clicks and zoom reach the plot underneath
  return canvas;
}

function paintTrace(ctx, cd, trace, xa, ya, font, full) {
  const size = font.size || full.font.size;
  ctx.font = `${font.weight || "normal"} ${size}px ${font.family || full.font.family}`;
  const colour = cellColour(trace);
  ctx.save();
  ctx.beginPath();
  ctx.rect(xa._offset, ya._offset, xa._length, ya._length);
  ctx.clip();
  for (let r = 0; r < cd.z.length; r++) {
    const y = Math.round(ya.c2p(centre(cd.yCenter, cd.y, r)));
    if (!(y >= 0 && y <= ya._length)) continue;
    for (let c = 0; c < cd.z[r].length; c++) {
      const text = cd.text[r] && cd.text[r][c];
      if (text === undefined || text === null || text === "" || text === false) continue;
      const x = Math.round(xa.c2p(centre(cd.xCenter, cd.x, c)));
      if (!(x >= 0 && x <= xa._length)) continue;
      ctx.fillStyle = font.color || contrast(colour(cd.z[r][c]));
      ctx.fillText(unescapeText(String(text)), xa._offset + x, ya._offset + y - size * (LINE_SPACING / 2 - 1));
    }
  }
  ctx.restore();
}

function centre(centres, bounds, i) {
  return centres ? centres[i] : (bounds[i] + bounds[i + 1]) / 2;
}

function unescapeText(text) {
  // viz/ escapes &, < and > for plotly's pseudo-HTML; a canvas draws the characters themselves.
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function cellColour(trace) {
  // z -> [r, g, b] through the trace's colour scale, linear between its stops as plotly's.
  let stops = trace.colorscale.map(([at, colour]) => [at, parseColour(colour)]);
  if (trace.reversescale) stops = stops.map(([at, rgb]) => [1 - at, rgb]).reverse();
  const lo = trace.zmin, span = (trace.zmax - trace.zmin) || 1;
  return (z) => {
    if (typeof z !== "number" || !isFinite(z)) return null;
    const t = Math.min(1, Math.max(0, (z - lo) / span));
    let i = 1;
    while (i < stops.length - 1 && stops[i][0] < t) i++;
    const [a, ca] = stops[i - 1], [b, cb] = stops[i];
    const f = b > a ? (t - a) / (b - a) : 0;
    return ca.map((value, k) => value + f * (cb[k] - value));
  };
}

function parseColour(colour) {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(colour);
  if (hex) {
    const h = hex[1].length === 3 ? hex[1].replace(/./g, "$&$&") : hex[1];
    return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
  }
  const numbers = String(colour).match(/[\d.]+/g) || ["0", "0", "0"];
  return numbers.slice(0, 3).map(Number);
}

function contrast(rgb) {
  // plotly's Color.contrast: white on a dark cell, its #444 on a light one (or on no cell).
  if (!rgb) return "#444";
  return (rgb[0] * 299 + rgb[1] * 587 + rgb[2] * 114) / 1000 < 128 ? "#fff" : "#444";
}
