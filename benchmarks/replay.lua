-- wrk script: replays the cookie jars of pre-created visitors, one jar per request, in turn.
--
--   wrk -s benchmarks/replay.lua URL -- COOKIES [BODY]
--
-- COOKIES: a file with one Cookie header value per line, or "-" for none (every request is then a
--          new visitor). Each wrk thread starts at its own offset and cycles through the lines.
-- BODY:    optional file; when given, every request is a POST of it as application/json.
-- WRK_PACE_MS (environment): when set, each connection waits that many milliseconds between
--          requests, to hold the load below saturation (wrk has no rate option; wrk2 is not packaged).
-- Every request carries a browser User-Agent: footfall counts requests without one as crawlers.
-- done() prints one line "WRK_JSON {...}" that benchmarks/wrk.py parses (latencies in microseconds,
-- with the whole latency histogram so that rounds can be pooled).

local user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
local jars = {}
local next_jar = 0
local method = "GET"
local body = nil

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  table.insert(threads, thread)
end

function init(args)
  if args[1] and args[1] ~= "-" then
    for line in io.lines(args[1]) do
      if #line > 0 then jars[#jars + 1] = line end
    end
  end
  if args[2] then
    local file = assert(io.open(args[2], "rb"))
    body = file:read("*a")
    file:close()
    method = "POST"
  end
  if #jars > 0 then
    next_jar = ((thread_index or 1) - 1) * 7919 % #jars
  end
end

local pace = tonumber(os.getenv("WRK_PACE_MS") or "")
if pace and pace > 0 then
  function delay()
    return pace
  end
end

function request()
  local headers = {["User-Agent"] = user_agent}
  if #jars > 0 then
    next_jar = next_jar % #jars + 1
    headers["Cookie"] = jars[next_jar]
  end
  if body then
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local histogram = {}
  for i = 1, #latency do  -- latency(i): the i-th distinct latency (µs) and how many requests took it
    local value, count = latency(i)
    histogram[#histogram + 1] = string.format("[%d,%d]", value, count)
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "histogram": [%s]}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(histogram, ",")))
end
