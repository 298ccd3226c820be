-- wrk script for the runtime benchmark: replays a fixed list of requests (BENCH_REQS, a Lua file
-- returning {{method, path, host, body-or-nil, extra-headers-or-nil}, ...}), each thread starting at its own offset,
-- and writes a JSON summary to BENCH_WRK_OUT when done.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local list = dofile(os.getenv("BENCH_REQS"))
  reqs = {}
  for i, r in ipairs(list) do
    local headers = { Host = r[3] }
    if r[4] then headers["Content-Type"] = "application/json" end
    if r[5] then for k, v in pairs(r[5]) do headers[k] = v end end
    reqs[i] = wrk.format(r[1], r[2], headers, r[4])
  end
  n = #reqs
  -- Spread threads over the list.
  i = (id or 0) * math.floor(n / 2)  -- at most 2 threads: each starts half a list apart
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

function done(summary, latency, requests)
  local us = function(p) return latency:percentile(p) / 1000.0 end
  local secs = summary.duration / 1e6
  local e = summary.errors
  local out = string.format(
    '{"requests": %d, "duration_s": %.3f, "requests_per_s": %.1f, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "p99.9": %.3f, "max": %.3f, "mean": %.3f}}',
    summary.requests, secs, summary.requests / secs, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    us(50), us(90), us(99), us(99.9), latency.max / 1000.0, latency.mean / 1000.0)
  local f = assert(io.open(os.getenv("BENCH_WRK_OUT"), "w"))
  f:write(out .. "\n")
  f:close()
end
