// ---- chart.js: one plotly figure per host element (THEME and BASE_CONFIG are prepended by Python) ----
// Streamlit calls the default export on mount and again on every rerun. The element is kept, so an
// unchanged figure costs nothing and a new one is a single Plotly.react on the same plot, where
// st.plotly_chart mounts a new element per figure and draws it two or three times. A chart out of
// sight (below the fold, in a hidden tab) is drawn when it comes within NEAR of the window: the
// charts a person sees first do not wait for the ones further down.
const views = new WeakMap();
const NEAR = "400px 0px";

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
  if (v.spec === data.figure) return cleanup(parentElement);
  v.spec = data.figure;
  const figure = themed(JSON.parse(data.figure));
  if (data.clicks && !figure.layout.hovermode) figure.layout.hovermode = "closest"; // clicks need a hovered point
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
    return Plotly.react(v.div, figure.data, figure.layout, config).then(() => {
      if (data.clicks && !v.bound) {
        v.bound = true;
        v.div.on("plotly_click", (event) => v.trigger("click", clickedPoints(event)));
      }
    });
  }).catch((error) => {
    v.div.textContent = `The chart could not be drawn: ${error.message}`;
  });
}
