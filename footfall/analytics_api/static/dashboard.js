/* footfall dashboard: reads GET /analytics/api/* with the login cookie and draws the page.
 *
 * The view's state (site, period, start, end, compare, filters, metric) lives in the query string,
 * so a view is shared by copying the link. Everything shown is built with DOM calls and
 * textContent (no HTML strings), and the page runs under a Content-Security-Policy without inline
 * code. `body[data-state]` is "loading", "ready" or "error" once every request of a load settled.
 * The header's live strip is live.js; each load tells it the site with a `footfall:site` event.
 */
"use strict";

(function () {
  const F = window.FootfallFormat;
  const Q = window.FootfallFilters;
  const API = document.body.dataset.api;
  // The deployment's zone (FOOTFALL_TIMEZONE), not the viewer's: a shared link shows the same days.
  const TZ = document.body.dataset.tz || "UTC";
  const PERIODS = ["today", "7d", "30d", "month", "custom"];
  const COMPARES = ["previous_period", "year_over_year", "none"];  // the first is the default
  // The summary's figures; `series` is the timeseries metric a click on the tile charts.
  const METRICS = [
    { key: "total_visits", label: "Visits", kind: "int", series: "visits" },
    { key: "unique_visitors", label: "Unique visitors", kind: "int", series: "unique_visitors" },
    { key: "page_views", label: "Page views", kind: "int", series: "page_views" },
    { key: "views_per_visit", label: "Views per visit", kind: "dec" },
    { key: "bounce_rate", label: "Bounce rate", kind: "pct", series: "bounce_rate", lowerIsBetter: true },
    { key: "visit_duration", label: "Visit duration", kind: "dur", series: "visit_duration" },
    { key: "new_visits", label: "New visits", kind: "int" },
    { key: "returning_visits", label: "Returning visits", kind: "int" },
  ];
  const SERIES = new Map(METRICS.filter((m) => m.series).map((m) => [m.series, m]));
  const DIMENSION_NAMES = {
    page: "Page", entry_page: "Entry page", exit_page: "Exit page", route: "Route", referrer: "Referrer",
    source: "Source", utm_source: "UTM source", utm_medium: "UTM medium", utm_campaign: "UTM campaign",
    country: "Country", device: "Device", browser: "Browser", os: "OS", event: "Event",
  };
  const OPS = { "==": "is", "!=": "is not", "~": "contains" };
  const ROWS_PER_PAGE = 10;
  const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;

  let state = readState();
  let generation = 0;
  let lastSeries = null;

  // ---- small DOM helpers -------------------------------------------------------------------
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (name.startsWith("data-")) node.dataset[name.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  // ---- state in the query string ------------------------------------------------------------
  function readState() {
    const q = new URLSearchParams(location.search);
    const period = PERIODS.includes(q.get("period")) ? q.get("period") : "30d";
    const metric = SERIES.has(q.get("metric")) ? q.get("metric") : "visits";
    return {
      site: q.get("site") || "",
      period,
      start: q.get("start") || "",
      end: q.get("end") || "",
      compare: COMPARES.includes(q.get("compare")) ? q.get("compare") : COMPARES[0],
      filters: q.get("filters") || "",
      metric,
    };
  }

  function writeState(changes, replace) {
    state = Object.assign({}, state, changes);
    const q = new URLSearchParams();
    if (state.site) q.set("site", state.site);
    if (state.period !== "30d") q.set("period", state.period);
    if (state.period === "custom") {
      q.set("start", state.start);
      q.set("end", state.end);
    }
    if (state.compare !== COMPARES[0]) q.set("compare", state.compare);
    if (state.filters) q.set("filters", state.filters);
    if (state.metric !== "visits") q.set("metric", state.metric);
    const url = location.pathname + (q.toString() ? "?" + q.toString() : "");
    history[replace ? "replaceState" : "pushState"](null, "", url);
  }

  function currentRange() {
    return F.range(state.period, F.today(TZ), state.start, state.end);
  }

  // ---- the JSON API ---------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, params) {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== null));
    let response;
    try {
      response = await fetch(API + path + "?" + query.toString(), {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
    } catch (exc) {
      throw new ApiError("The server did not answer (" + exc.message + ").", 0);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (exc) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && body.error ? body.error : response.status + " " + response.statusText;
      throw new ApiError(detail, response.status);
    }
    return body;
  }

  function baseParams(range) {
    return { site: state.site, start: range.start, end: range.end, tz: TZ, filters: state.filters };
  }

  function showError(exc) {
    const box = $("#error");
    box.replaceChildren();
    if (exc.status === 401) {
      box.append("Your login has expired or the admin token changed. ",
        el("a", { href: location.pathname + location.search, text: "Log in again" }), ".");
    } else {
      box.append("Could not load the statistics: " + exc.message);
    }
    box.hidden = false;
  }

  // ---- header controls ----------------------------------------------------------------------
  function renderControls(range) {
    for (const button of $$(".presets button")) {
      button.setAttribute("aria-pressed", String(button.dataset.period === state.period));
    }
    const custom = $("#custom-range");
    custom.hidden = state.period !== "custom";
    $("#start").value = range ? range.start : state.start;
    $("#end").value = range ? range.end : state.end;
    $("#compare").value = state.compare;
    $("#range-label").textContent = range ? F.rangeLabel(range.start, range.end) + " · " + TZ : "";
  }

  function renderComparedRange(body) {
    if (!body.previous_start || !body.previous_end) return;
    $("#range-label").textContent += " · compared with " + F.rangeLabel(body.previous_start, body.previous_end);
  }

  async function loadSites() {
    const body = await api("/sites", {});
    const names = (Array.isArray(body) ? body : body.sites || body.results || [])
      .map((s) => (typeof s === "string" ? s : s.site || s.name)).filter(Boolean);
    const select = $("#site");
    select.replaceChildren(...names.map((name) => el("option", { value: name, text: name })));
    if (names.length && !names.includes(state.site)) writeState({ site: names[0] }, true);
    if (state.site && !names.includes(state.site)) select.append(el("option", { value: state.site, text: state.site }));
    select.value = state.site;
    return names;
  }

  // ---- filter chips --------------------------------------------------------------------------
  function renderFilters() {
    const box = $("#filters");
    const clauses = Q.parse(state.filters);
    box.hidden = clauses.length === 0;
    box.replaceChildren(...clauses.map((c, index) => {
      const name = c.dimension ? (DIMENSION_NAMES[c.dimension] || c.dimension) + " " + OPS[c.op] + " " : "";
      const values = c.dimension === "country" ? c.values.map(countryLabel) : c.values;
      return el("span", { class: "chip", "data-dimension": c.dimension || "" },
        el("span", { class: "chip-text", text: name }), el("strong", { text: values.join(" or ") }),
        el("button", { type: "button", class: "chip-remove", "data-index": String(index),
          "aria-label": "Remove filter " + name + values.join(" or "), text: "×" }));
    }));
    if (clauses.length > 1) {
      box.append(el("button", { type: "button", class: "chip-clear ghost", text: "Clear all" }));
    }
  }

  // ---- top figures ---------------------------------------------------------------------------
  function changeBadge(metric, change) {
    if (state.compare === "none") return el("span", { class: "tile-change none", text: "\u00a0" });
    if (change === null || change === undefined) {
      return el("span", { class: "tile-change none", title: "Nothing to compare with", text: "—" });
    }
    const pct = Math.round(Number(change));
    const better = metric.lowerIsBetter ? pct < 0 : pct > 0;
    const arrow = pct > 0 ? "↑" : pct < 0 ? "↓" : "→";
    const tone = pct === 0 ? "flat" : better ? "good" : "bad";
    return el("span", { class: "tile-change " + tone, title: "Change from the comparison period",
      text: arrow + " " + Math.abs(pct) + "%" });
  }

  function renderSummary(body) {
    const tiles = METRICS.map((metric) => {
      const value = body[metric.key];
      const tag = metric.series ? "button" : "div";
      const tile = el(tag, {
        class: "tile" + (metric.series ? " chartable" : ""), "data-metric": metric.key,
        "data-value": value === null || value === undefined ? "" : String(value),
        type: metric.series ? "button" : null,
        "aria-pressed": metric.series ? String(metric.series === state.metric) : null,
      },
      el("span", { class: "tile-label", text: metric.label }),
      el("span", { class: "tile-value", text: F.figure(metric.kind, value) }),
      changeBadge(metric, body.change ? body.change[metric.key] : null));
      if (metric.series) tile.dataset.series = metric.series;
      if (body.previous && body.previous[metric.key] !== undefined) {
        tile.title = "Before: " + F.figure(metric.kind, body.previous[metric.key]);
      }
      return tile;
    });
    $("#tiles").replaceChildren(...tiles);
  }

  // ---- time series ---------------------------------------------------------------------------
  function renderChart(body, before, size) {
    lastSeries = { body, before, size };
    const metric = SERIES.get(state.metric);
    $("#chart-title").textContent = metric.label;
    $("#chart-interval").textContent = "by " + size;
    const compareLabel = state.compare === "year_over_year" ? "A year before" : "Previous period";
    window.FootfallChart.render($("#chart"), metric, body, before, size, compareLabel);
  }

  // ---- breakdown cards -----------------------------------------------------------------------
  /** `Germany` for `DE` (the code itself when the browser has no name for it). */
  function countryName(code) {
    if (!/^[A-Z]{2}$/.test(code || "") || !regionNames) return code;
    try {
      return regionNames.of(code) || code;
    } catch (exc) {
      return code;
    }
  }

  function countryLabel(code) {
    const name = countryName(code);
    return name === code ? code : name + " (" + code + ")";
  }

  function activeDimension(card) {
    const tab = $("[data-dimension][aria-selected=true]", card);
    return tab.dataset.dimension;
  }

  function renderRows(card, dimension, results, append) {
    const list = $(".rows", card);
    const rows = results.map((r) => {
      const value = r.value === null || r.value === undefined ? "(none)" : String(r.value);
      const text = el("span", { class: "row-text" });
      if (dimension === "country" && countryName(value) !== value) {
        text.append(el("span", { class: "cc", text: value }), countryName(value));
      } else {
        text.textContent = value;
      }
      const row = el("li", { class: "row", "data-visitors": String(r.unique_visitors ?? 0) },
        el("button", { type: "button", class: "row-label", "data-value": value, title: "Filter: " + value },
          el("span", { class: "bar", "aria-hidden": "true" }), text),
        el("span", { class: "num", text: F.count(r.unique_visitors ?? 0) }),
        el("span", { class: "num", text: F.count(r.total_visits ?? 0) }));
      return row;
    });
    if (append) list.append(...rows);
    else list.replaceChildren(...rows);
    if (!list.children.length) list.append(el("li", { class: "empty muted", text: "No data for this period" }));
    const all = $$("li.row", list);
    const top = Math.max(1, ...all.map((li) => Number(li.dataset.visitors)));
    for (const li of all) $(".bar", li).style.width = (100 * Number(li.dataset.visitors) / top).toFixed(1) + "%";
  }

  async function loadCard(card, range, append) {
    const dimension = activeDimension(card);
    const page = append ? Number(card.dataset.page || 1) + 1 : 1;
    const tab = $("[data-dimension][aria-selected=true]", card);
    $(".dim-label", card).textContent = tab.textContent.trim() || DIMENSION_NAMES[dimension];
    const error = $(".card-error", card);
    card.classList.add("loading");
    try {
      const body = await api("/breakdown", Object.assign(baseParams(range),
        { dimension, limit: ROWS_PER_PAGE, page }));
      if (activeDimension(card) !== dimension) return;
      error.hidden = true;
      renderRows(card, dimension, body.results || [], append);
      card.dataset.page = String(page);
      const total = Number(body.total ?? 0);
      $(".more", card).hidden = !(total > page * ROWS_PER_PAGE);
    } catch (exc) {
      error.textContent = "Could not load this card: " + exc.message;
      error.hidden = false;
      $(".rows", card).replaceChildren();
      throw exc;
    } finally {
      card.classList.remove("loading");
    }
  }

  // ---- one load of the whole page ------------------------------------------------------------
  async function load() {
    const mine = ++generation;
    document.body.dataset.state = "loading";
    $("#error").hidden = true;
    // live.js follows the site shown (a repeat of the same site is ignored there)
    document.dispatchEvent(new CustomEvent("footfall:site", { detail: { site: state.site } }));
    const range = currentRange();
    renderControls(range);
    renderFilters();
    if (!range) {
      showError(new ApiError("pick a start and an end day, the start not after the end.", 400));
      document.body.dataset.state = "error";
      return;
    }
    const params = baseParams(range);
    const size = F.interval(range.start, range.end);
    const series = { metric: state.metric, interval: size };
    const summary = api("/summary", Object.assign({}, params, { compare: state.compare }));
    // The comparison line: the same metric over the period the summary compared with.
    const before = summary.then((body) => (body.previous_start && state.compare !== "none"
      ? api("/timeseries", Object.assign({}, params, series, { start: body.previous_start, end: body.previous_end }))
      : null)).catch(() => null);
    const jobs = [
      summary.then((body) => {
        if (mine !== generation) return;
        renderSummary(body);
        renderComparedRange(body);
      }),
      Promise.all([api("/timeseries", Object.assign({}, params, series)), before]).then(([body, earlier]) => {
        if (mine !== generation) return;
        $("#chart-error").hidden = true;
        renderChart(body, earlier, size);
      }).catch((exc) => {
        $("#chart-error").textContent = "Could not load the chart: " + exc.message;
        $("#chart-error").hidden = false;
        throw exc;
      }),
      ...$$(".breakdown").map((card) => loadCard(card, range, false)),
    ];
    const outcomes = await Promise.allSettled(jobs);
    if (mine !== generation) return;
    const failed = outcomes.find((o) => o.status === "rejected");
    if (failed) showError(failed.reason);
    document.body.dataset.state = failed ? "error" : "ready";
  }

  async function start() {
    try {
      document.body.dataset.state = "loading";
      await loadSites();
    } catch (exc) {
      showError(exc);
      document.body.dataset.state = "error";
      return;
    }
    await load();
  }

  // ---- events --------------------------------------------------------------------------------
  function wire() {
    $("#site").addEventListener("change", (e) => {
      writeState({ site: e.target.value, filters: "" });
      load();
    });
    for (const button of $$(".presets button")) {
      button.addEventListener("click", () => {
        const period = button.dataset.period;
        if (period === "custom") {
          const range = currentRange() || F.range("30d", F.today(TZ));
          writeState({ period, start: range.start, end: range.end });
        } else {
          writeState({ period, start: "", end: "" });
        }
        load();
      });
    }
    $("#custom-range").addEventListener("submit", (e) => {
      e.preventDefault();
      writeState({ period: "custom", start: $("#start").value, end: $("#end").value });
      load();
    });
    $("#compare").addEventListener("change", (e) => {
      writeState({ compare: e.target.value });
      load();
    });
    $("#tiles").addEventListener("click", (e) => {
      const tile = e.target.closest(".tile.chartable");
      if (!tile || tile.dataset.series === state.metric) return;
      writeState({ metric: tile.dataset.series });
      load();
    });
    $("#filters").addEventListener("click", (e) => {
      if (e.target.closest(".chip-clear")) writeState({ filters: "" });
      else if (e.target.closest(".chip-remove")) {
        writeState({ filters: Q.without(state.filters, Number(e.target.closest(".chip-remove").dataset.index)) });
      } else return;
      load();
    });
    for (const card of $$(".breakdown")) {
      card.addEventListener("click", (e) => {
        const tab = e.target.closest("[role=tab]");
        const row = e.target.closest(".row-label");
        const more = e.target.closest(".more");
        if (tab) {
          for (const other of $$("[role=tab]", card)) other.setAttribute("aria-selected", String(other === tab));
          loadCard(card, currentRange(), false).catch(showError);
        } else if (row) {
          writeState({ filters: Q.withClause(state.filters, activeDimension(card), row.dataset.value) });
          load();
        } else if (more) {
          loadCard(card, currentRange(), true).catch(showError);
        }
      });
    }
    window.addEventListener("popstate", () => {
      state = readState();
      load();
    });
    const scheme = window.matchMedia("(prefers-color-scheme: dark)");
    scheme.addEventListener("change", () => {
      if (lastSeries) renderChart(lastSeries.body, lastSeries.before, lastSeries.size);
    });
  }

  wire();
  start();
})();
