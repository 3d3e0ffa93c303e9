/* footfall dashboard: the time-series chart (Chart.js, vendored), coloured from the page's CSS
 * variables so it follows light and dark mode. */
"use strict";

(function (global) {
  const F = global.FootfallFormat;

  function points(list) {
    return (list || []).map((p) => ({ bucket: p.bucket, value: p.value ?? 0 }));
  }

  /**
   * Draw one metric over time on `canvas`, replacing the chart already there.
   * `metric` is {label, kind}; `body` and `before` are GET /analytics/api/timeseries answers (the
   * current range and the compared one, or null); `size` is the interval; `compareLabel` names the
   * dashed line. Returns the Chart.
   */
  function render(canvas, metric, body, before, size, compareLabel) {
    const current = points(body.points);
    const previous = before ? points(before.points) : [];
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue(name).trim();
    const datasets = [{
      label: metric.label, data: current.map((p) => p.value), borderColor: color("--chart-line"),
      backgroundColor: color("--chart-fill"), fill: true, cubicInterpolationMode: "monotone", borderWidth: 2,
      pointRadius: current.length > 16 ? 0 : 3, pointHoverRadius: 4, pointBackgroundColor: color("--chart-line"),
    }];
    if (previous.length) {
      datasets.push({
        label: compareLabel, data: previous.slice(0, current.length).map((p) => p.value),
        borderColor: color("--chart-compare"), borderDash: [5, 4], borderWidth: 1.5, fill: false,
        cubicInterpolationMode: "monotone", pointRadius: 0, pointHoverRadius: 3,
      });
    }
    const fmt = (v) => F.figure(metric.kind, v);
    // each line's tooltip names its own bucket (the compared line's days are earlier ones)
    const tooltipLabel = (ctx) => (ctx.datasetIndex === 0 ? ctx.label
      : F.bucketLabel(previous[ctx.dataIndex].bucket, size)) + ": " + fmt(ctx.parsed.y);
    const config = {
      type: "line",
      data: { labels: current.map((p) => F.bucketLabel(p.bucket, size)), datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: datasets.length > 1, labels: { color: color("--muted"), boxWidth: 12 } },
          tooltip: { callbacks: { label: tooltipLabel } },
        },
        scales: {
          x: { grid: { display: false }, ticks: { color: color("--muted"), maxRotation: 0, autoSkipPadding: 12 },
            border: { color: color("--grid") } },
          y: { beginAtZero: true, grid: { color: color("--grid") }, border: { display: false },
            ticks: { color: color("--muted"), precision: 0, callback: fmt, maxTicksLimit: 6 } },
        },
      },
    };
    const existing = global.Chart.getChart(canvas);
    if (existing) existing.destroy();
    return new global.Chart(canvas, config);
  }

  global.FootfallChart = { render };
})(window);
