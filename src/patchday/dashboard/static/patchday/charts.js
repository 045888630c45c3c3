/* patchday's charts: draws each <canvas data-chart="ID"> from the JSON block #ID that the page rendered with
   Django's json_script, using the vendored Chart.js (window.Chart). No build step, no inline script.

   The JSON is data, not a Chart.js configuration: {"kind": "line"|"bar", "labels": [...], "unit": "%"|"",
   "stacked": bool, "max": number|null, "datasets": [{"label", "data": [...], "tone", "tones", "fill", "kind"}]}.
   Colours come from CSS custom properties (--pd-chart-*), so a chart follows the light or dark theme, and is
   redrawn when the theme changes. Every chart has a text alternative in the page (a table or a sentence):
   without JavaScript nothing is lost but the picture. */
(function () {
  "use strict";

  var charts = [];

  function token(name) {
    return getComputedStyle(document.documentElement).getPropertyValue("--pd-chart-" + name).trim();
  }

  function withAlpha(colour, alpha) {
    // "#rrggbb" -> "rgba(r, g, b, alpha)"; anything else is returned as it is
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
    if (!m) return colour;
    return "rgba(" + parseInt(m[1], 16) + ", " + parseInt(m[2], 16) + ", " + parseInt(m[3], 16) + ", " + alpha + ")";
  }

  function format(value, unit) {
    if (value === null || value === undefined) return "no data";
    var rounded = Math.round(value * 10) / 10;
    return unit === "%" ? rounded + "%" : unit ? rounded + " " + unit : String(rounded);
  }

  function configure(spec) {
    var text = token("text"), grid = token("grid");
    var reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var datasets = spec.datasets.map(function (set) {
      var colour = token(set.tone || "primary") || token("primary");
      var line = (set.kind || spec.kind) === "line";
      // bars may each have their own tone (open findings: one colour per SSVC decision)
      var colours = set.tones ? set.tones.map(function (tone) { return token(tone) || colour; }) : null;
      return {
        type: set.kind || undefined, // a dataset may differ from the chart: rollouts' bars on the risk line
        label: set.label,
        data: set.data,
        borderColor: colour,
        backgroundColor: line ? withAlpha(colour, 0.15) : colours || colour,
        fill: line && !!set.fill,
        borderWidth: line ? 2 : 0,
        pointRadius: line && spec.labels.length > 40 ? 0 : 2,
        tension: 0.2,
        spanGaps: false, // a day without a snapshot stays a gap: no line is drawn through it
      };
    });
    return {
      type: spec.kind,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: reduced ? false : { duration: 300 },
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: datasets.length > 1, labels: { color: text, boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                return ctx.dataset.label + ": " + format(ctx.parsed.y, spec.unit);
              },
            },
          },
        },
        scales: {
          x: { stacked: !!spec.stacked, ticks: { color: text, maxRotation: 0, autoSkipPadding: 12 }, grid: { color: grid } },
          y: {
            stacked: !!spec.stacked,
            beginAtZero: true,
            max: spec.max === null || spec.max === undefined ? undefined : spec.max,
            ticks: {
              color: text,
              precision: 0,
              callback: function (value) {
                return spec.unit === "%" ? value + "%" : value;
              },
            },
            grid: { color: grid },
          },
        },
      },
    };
  }

  function draw(root) {
    if (typeof window.Chart !== "function") return;
    var canvases = (root || document).querySelectorAll("canvas[data-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      if (window.Chart.getChart(canvas)) return; // drawn already
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      charts.push({ chart: new window.Chart(canvas, configure(spec)), spec: spec });
    });
  }

  function redraw() {
    // the theme changed: recolour every chart still in the page, forget the ones an HTMX swap removed
    charts = charts.filter(function (entry) {
      if (!entry.chart.canvas || !entry.chart.canvas.isConnected) {
        entry.chart.destroy();
        return false;
      }
      var fresh = configure(entry.spec);
      entry.chart.data.datasets.forEach(function (set, i) {
        set.borderColor = fresh.data.datasets[i].borderColor;
        set.backgroundColor = fresh.data.datasets[i].backgroundColor;
      });
      entry.chart.options.plugins.legend.labels.color = fresh.options.plugins.legend.labels.color;
      ["x", "y"].forEach(function (axis) {
        entry.chart.options.scales[axis].ticks.color = fresh.options.scales[axis].ticks.color;
        entry.chart.options.scales[axis].grid.color = fresh.options.scales[axis].grid.color;
      });
      entry.chart.update("none");
      return true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  // content swapped in by HTMX (the overview's period form) brings its own canvases and JSON blocks
  document.addEventListener("htmx:load", function (event) {
    draw(event.target);
  });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
})();
