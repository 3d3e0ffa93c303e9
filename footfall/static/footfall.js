// footfall.js: page views and custom events for footfall. No dependencies; never throws into the page.
//   <script defer src="/analytics/footfall.js" data-site="blog" data-api="https://stats.example"></script>
//   footfall.track("signup", {plan: "pro"})
// data-site: the site (default FOOTFALL_DEFAULT_SITE). data-api: where events go, an origin (the track
// path is added) or the track endpoint's full URL; default: the track path on the script's own origin.
// The server bakes its settings into the two values tagged FOOTFALL_ below. See README "Tracker script".
(function (w, d) {
  "use strict";
  var RESPECT_GPC = false /*FOOTFALL_RESPECT_GPC*/;
  var TRACK_PATH = "/analytics/track" /*FOOTFALL_TRACK_PATH*/;
  var loc = w.location, nav = w.navigator, old = w.footfall, api = {track: function () {}, loaded: 1};
  var endpoint, site, last;

  if (old && old.loaded) return; // the script is on the page twice
  w.footfall = api;

  function guard(f) { // what the page calls, or what runs on its behalf, never throws
    return function () {
      try { return f.apply(this, arguments); } catch (e) { /* never into the host page */ }
    };
  }

  function uuid() { // a version 4 UUID (RFC 9562); randomUUID needs a secure context
    var c = w.crypto, b = new Uint8Array(16), s = "", i;
    if (c && c.randomUUID) return c.randomUUID();
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = b[6] & 15 | 64;
    b[8] = b[8] & 63 | 128;
    for (i = 0; i < 16; i++) s += ([4, 6, 8, 10].indexOf(i) < 0 ? "" : "-") + (b[i] + 256).toString(16).slice(1);
    return s;
  }

  function send(type, fields) {
    var body = {eventType: type, path: loc.pathname + loc.search, referrer: d.referrer, event_id: uuid()}, k;
    if (site) body.site = site;
    for (k in fields) body[k] = fields[k];
    body = JSON.stringify(body); // sent as text/plain: no CORS preflight, and a beacon can carry it
    function beacon() { try { nav.sendBeacon(endpoint, body); } catch (e) { /* nothing left to try */ } }
    try {
      fetch(endpoint, {method: "POST", body: body, credentials: "include", keepalive: true}).catch(beacon);
    } catch (e) { beacon(); }
  }

  function pageView() { // once per path: a replaceState or a re-click that keeps the path sends none
    var path = loc.pathname + loc.search;
    if (path === last) return;
    last = path;
    send("page_view", {title: d.title});
  }

  function track(name, props) {
    send("custom", {name: name, props: props});
  }

  var routed = guard(function () { setTimeout(guard(pageView), 0); }); // after the router sets the title

  guard(function () {
    var me = d.currentScript || d.querySelector("script[src*='footfall']"), queued = (old && old.q) || [];
    function data(name) { return me && me.getAttribute("data-" + name); }
    if (RESPECT_GPC && nav.globalPrivacyControl === true) return; // footfall.track stays a no-op
    site = data("site");
    endpoint = new URL(data("api") || TRACK_PATH, (me && me.src) || loc.href);
    if (endpoint.pathname === "/") endpoint.pathname = TRACK_PATH;
    endpoint = endpoint.href;
    api.track = guard(track);
    ["pushState", "replaceState"].forEach(function (name) {
      var original = w.history[name];
      w.history[name] = function () {
        var result = original.apply(this, arguments); // the page's own errors stay its own
        routed();
        return result;
      };
    });
    w.addEventListener("popstate", routed);
    function start() {
      pageView();
      for (var i = 0; i < queued.length; i++) api.track.apply(api, queued[i]);
    }
    if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", guard(start));
    else start();
  })();
})(window, document);
