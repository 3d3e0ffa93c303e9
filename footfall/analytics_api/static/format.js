/* footfall dashboard: formatting figures and calendar days (no I/O, no DOM). */
"use strict";

(function (global) {
  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

  /** Seconds as `45s`, `3m 07s`, `1h 02m`. */
  function duration(seconds) {
    const s = Math.round(Number(seconds) || 0);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }

  /** Format `value` for a figure kind: int | dec | pct (0..1) | dur (seconds). */
  function figure(kind, value) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    switch (kind) {
      case "dec": return decimal.format(value);
      case "pct": return Math.round(Number(value) * 100) + "%";
      case "dur": return duration(value);
      default: return integer.format(value);
    }
  }

  /** A short count for table cells: 950, 1.2K, 3.4M. */
  function count(value) {
    return Number(value) < 10000 ? integer.format(value) : compact.format(value);
  }

  /** Today's date `YYYY-MM-DD` in time zone `tz`. */
  function today(tz, now) {
    const parts = new Intl.DateTimeFormat("en-US", {
      timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    }).formatToParts(now || new Date());
    const get = (type) => parts.find((p) => p.type === type).value;
    return get("year") + "-" + get("month") + "-" + get("day");
  }

  function toUTC(day) {
    const [y, m, d] = day.split("-").map(Number);
    return Date.UTC(y, m - 1, d);
  }

  function fromUTC(ms) {
    return new Date(ms).toISOString().slice(0, 10);
  }

  /** `day` (YYYY-MM-DD) moved by `n` days. */
  function addDays(day, n) {
    return fromUTC(toUTC(day) + n * 86400000);
  }

  /** Inclusive number of days from `start` to `end`. */
  function daysBetween(start, end) {
    return Math.round((toUTC(end) - toUTC(start)) / 86400000) + 1;
  }

  /** Whether `text` is a real calendar day written YYYY-MM-DD. */
  function isDay(text) {
    return /^\d{4}-\d{2}-\d{2}$/.test(text || "") && fromUTC(toUTC(text)) === text;
  }

  /**
   * The inclusive days [start, end] of a period preset seen from `todayDay`.
   * Returns null for a custom period whose days are missing or out of order.
   */
  function range(period, todayDay, start, end) {
    switch (period) {
      case "today": return { start: todayDay, end: todayDay };
      case "7d": return { start: addDays(todayDay, -6), end: todayDay };
      case "month": return { start: todayDay.slice(0, 8) + "01", end: todayDay };
      case "custom":
        return isDay(start) && isDay(end) && start <= end ? { start, end } : null;
      default: return { start: addDays(todayDay, -29), end: todayDay };
    }
  }

  /** The chart's bucket size for an inclusive range of days. */
  function interval(start, end) {
    const days = daysBetween(start, end);
    if (days <= 2) return "hour";
    if (days <= 92) return "day";
    if (days <= 731) return "week";
    return "month";
  }

  const shortDay = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
  const longDay = new Intl.DateTimeFormat("en-US", {
    weekday: "short", month: "short", day: "numeric", year: "numeric", timeZone: "UTC",
  });
  const monthName = new Intl.DateTimeFormat("en-US", { month: "short", year: "numeric", timeZone: "UTC" });

  /** `Mar 3 – Mar 9, 2026` for an inclusive range. */
  function rangeLabel(start, end) {
    if (start === end) return longDay.format(toUTC(start));
    return shortDay.format(toUTC(start)) + " – " + shortDay.format(toUTC(end)) + ", " + end.slice(0, 4);
  }

  /** A chart axis label for a bucket start (`YYYY-MM-DD` or `YYYY-MM-DDTHH:...`). */
  function bucketLabel(bucket, size) {
    const text = String(bucket);
    if (size === "hour") {
      const clock = text.slice(11, 16);
      return clock === "00:00" && isDay(text.slice(0, 10)) ? shortDay.format(toUTC(text.slice(0, 10))) : clock || text;
    }
    const day = text.slice(0, 10);
    if (!isDay(day)) return text;
    if (size === "month") return monthName.format(toUTC(day));
    return shortDay.format(toUTC(day));
  }

  global.FootfallFormat = {
    duration, figure, count, today, addDays, daysBetween, isDay, range, interval, rangeLabel, bucketLabel,
  };
})(window);
