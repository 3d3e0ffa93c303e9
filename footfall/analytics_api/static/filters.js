/* footfall dashboard: the `filters` query grammar of GET /analytics/api/* (docs/data-model.md).
 *
 * A filter string is clauses joined by `;`; a clause is `dimension` `==` | `!=` | `~` `value`,
 * where a value may list alternatives joined by `|`, and `\` escapes `;`, `|` and `\` inside a
 * value. These helpers split and build such strings without ever breaking an escape.
 */
"use strict";

(function (global) {
  const CLAUSE = /^([a-z_]+)(==|!=|~)([\s\S]*)$/;

  /** Escape one literal value: `\` `;` `|` get a backslash. */
  function escapeValue(value) {
    return String(value).replace(/[\\;|]/g, (ch) => "\\" + ch);
  }

  /** Split `text` on unescaped `sep`, keeping escapes in the parts. */
  function splitUnescaped(text, sep) {
    const parts = [];
    let current = "";
    for (let i = 0; i < text.length; i += 1) {
      const ch = text[i];
      if (ch === "\\" && i + 1 < text.length) {
        current += ch + text[i + 1];
        i += 1;
      } else if (ch === sep) {
        parts.push(current);
        current = "";
      } else {
        current += ch;
      }
    }
    parts.push(current);
    return parts;
  }

  /** Drop the escapes of one value. */
  function unescapeValue(raw) {
    return raw.replace(/\\([\s\S])/g, "$1");
  }

  /**
   * Parse a filter string into clauses {dimension, op, values, raw}; `values` are unescaped
   * alternatives, `raw` is the clause as written (rebuilt unchanged by `join`).
   * Clauses that do not parse are kept with dimension null so they can still be shown and removed.
   */
  function parse(text) {
    if (!text) return [];
    return splitUnescaped(text, ";").filter((raw) => raw.length > 0).map((raw) => {
      const match = CLAUSE.exec(raw);
      if (!match) return { dimension: null, op: null, values: [raw], raw };
      const values = splitUnescaped(match[3], "|").map(unescapeValue);
      return { dimension: match[1], op: match[2], values, raw };
    });
  }

  /** Build the clause `dimension==value` for one literal value. */
  function clause(dimension, op, value) {
    return dimension + op + escapeValue(value);
  }

  /** Join clauses (objects from `parse` or raw strings) back into a filter string. */
  function join(clauses) {
    return clauses.map((c) => (typeof c === "string" ? c : c.raw)).join(";");
  }

  /** `text` with `dimension==value` set: an earlier clause on the same dimension is replaced. */
  function withClause(text, dimension, value) {
    const kept = parse(text).filter((c) => c.dimension !== dimension);
    kept.push(clause(dimension, "==", value));
    return join(kept);
  }

  /** `text` without the clause at `index`. */
  function without(text, index) {
    const clauses = parse(text);
    clauses.splice(index, 1);
    return join(clauses);
  }

  global.FootfallFilters = { escapeValue, unescapeValue, splitUnescaped, parse, clause, join, withClause, without };
})(window);
