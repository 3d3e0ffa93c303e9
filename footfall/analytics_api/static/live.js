/* footfall dashboard: the header's live strip, "● 3 visitors now · 4,001 visits in total · 145 today".
 *
 * For the site the page shows (dashboard.js announces it with a `footfall:site` event on document):
 * first filled from GET <data-live-stats>?site=S (/analytics/live/stats: /api/stats where the login
 * cookie, Path=/analytics, reaches it), then kept current by the Server-Sent Events stream
 * <data-live-stream>?site=S (/analytics/live). Its events are NAMED `visitor_update` (so `onmessage`
 * never fires) and carry {"type": "visitor_update", "stats": {...}}. A dropped connection is
 * reconnected by the browser's EventSource itself, which sends Last-Event-ID (the server resumes).
 *
 * Without a stream (data-live-stream is empty under a plain WSGI server, which answers it 501), or
 * when the server refuses it (any non-200 answer ends an EventSource for good), the strip polls the
 * stats every 10 s, and tries the stream again a minute after a refusal. The strip stays hidden until
 * the numbers were read once and hides again when the login is refused (the page itself says so); a
 * failed refresh keeps the last numbers, greyed, with their time in the tooltip.
 * `#live[data-mode]` is "off", "connecting", "stream", "poll" or "stale".
 */
"use strict";

(function () {
  const F = window.FootfallFormat;
  const strip = document.getElementById("live");
  const STATS = document.body.dataset.liveStats;
  const STREAM = document.body.dataset.liveStream || "";
  const POLL_MS = 10000;
  const STREAM_RETRY_MS = 60000;  // after a refused stream, polls go on this long before trying it again
  const TITLES = {
    connecting: "Connecting to the live stream…",
    stream: "Live: the server pushes every change",
    poll: "Refreshed every 10 seconds",
  };
  const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  let site = null;  // the site followed; null before the page named one
  let generation = 0;  // bumped on every site switch: answers for an older site are dropped
  let source = null;
  let timer = null;
  let refusedAt = -Infinity;  // Date.now() when the server last refused the stream
  let shownAt = null;

  function query() {
    return site ? "?site=" + encodeURIComponent(site) : "";  // none: FOOTFALL_DEFAULT_SITE
  }

  function setMode(mode) {
    strip.dataset.mode = mode;
    strip.title = mode === "stale"
      ? "Could not refresh the live numbers" + (shownAt ? "; these are from " + clock.format(shownAt) : "")
      : TITLES[mode] || "";
  }

  /** Write a figure; one that changed from a number to another flashes once (`.bumped`). */
  function setFigure(id, value) {
    const node = document.getElementById(id);
    const text = F.figure("int", value);
    const placeholder = F.figure("int", null);
    if (text !== placeholder && node.textContent !== placeholder && node.textContent !== text) {
      node.classList.remove("bumped");
      void node.offsetWidth;  // restart the animation
      node.classList.add("bumped");
    }
    node.textContent = text;
  }

  /** Show a stats object of /api/stats (null: dashes, while another site's numbers load). */
  function show(stats) {
    const active = stats ? Number(stats.activeUsers) : null;
    setFigure("live-active", active);
    document.getElementById("live-active-word").textContent = active === 1 ? "visitor" : "visitors";
    setFigure("live-total", stats ? stats.totalVisits : null);
    setFigure("live-today", stats ? stats.todayVisits : null);
    if (stats) {
      shownAt = new Date();
      strip.hidden = false;
    }
  }

  /** GET the stats: {stats} on 200, {denied: true} on 401/403, {} on any other failure. */
  async function readStats() {
    try {
      const response = await fetch(STATS + query(), {
        headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) return { denied: true };
      return response.ok ? { stats: await response.json() } : {};
    } catch (exc) {
      return {};
    }
  }

  function stop() {
    if (source) source.close();
    source = null;
    clearTimeout(timer);
    timer = null;
  }

  function hide() {
    stop();
    strip.hidden = true;
    setMode("off");
  }

  function openStream(mine) {
    setMode("connecting");
    const stream = new EventSource(STREAM + query());
    source = stream;
    stream.addEventListener("open", () => {
      if (mine === generation) setMode("stream");
    });
    stream.addEventListener("visitor_update", (event) => {
      if (mine !== generation) return;
      let message = null;
      try {
        message = JSON.parse(event.data);
      } catch (exc) {
        return;  // not ours to break the page over; the next event is the whole state again
      }
      if (message && message.stats) {
        show(message.stats);
        setMode("stream");
      }
    });
    stream.addEventListener("error", () => {
      if (mine !== generation) return;
      if (stream.readyState !== EventSource.CLOSED) {
        setMode("connecting");  // the browser reconnects by itself, with Last-Event-ID
        return;
      }
      source = null;  // refused (a non-200 answer): poll instead
      refusedAt = Date.now();
      setMode(strip.hidden ? "off" : "poll");
      poll(mine);
    });
  }

  function poll(mine) {
    timer = setTimeout(async () => {
      const answer = await readStats();
      if (mine !== generation) return;
      if (answer.denied) {
        hide();
        return;
      }
      if (!answer.stats) {
        if (!strip.hidden) setMode("stale");
        poll(mine);
        return;
      }
      show(answer.stats);
      if (STREAM && Date.now() - refusedAt >= STREAM_RETRY_MS) {
        openStream(mine);
      } else {
        setMode("poll");
        poll(mine);
      }
    }, POLL_MS);
  }

  /** Follow `next` (a site name, "" for the default site): read its numbers, then stream or poll. */
  async function follow(next) {
    if (next === site) return;
    site = next;
    const mine = ++generation;
    stop();
    show(null);
    const answer = await readStats();
    if (mine !== generation) return;
    if (answer.denied) {
      hide();
      return;
    }
    if (answer.stats) show(answer.stats);
    if (STREAM) {
      openStream(mine);
    } else {
      setMode(strip.hidden ? "off" : "poll");
      poll(mine);
    }
  }

  if (!strip || !STATS) return;
  document.addEventListener("footfall:site", (event) => follow(event.detail.site || ""));
  window.addEventListener("pagehide", stop);
  window.addEventListener("pageshow", (event) => {  // back from the back/forward cache: start again
    if (!event.persisted || site === null) return;
    const again = site;
    site = null;
    follow(again);
  });
})();
