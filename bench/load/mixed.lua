-- wrk script of bench/load/run.sh: a mix of tessera serve's endpoints.
--
--   wrk -t2 -c256 -d60s -s bench/load/mixed.lua http://127.0.0.1:PORT -- requests.tsv
--
-- requests.tsv (written by `load.py requests`) has one request a line:
-- KIND<TAB>METHOD<TAB>PATH<TAB>JSON BODY (may be empty), KIND "ok" for a
-- request that must succeed and "bad" for a deliberate client mistake (a 4xx
-- is its right answer). A line appears as often as its weight. Each thread
-- walks the list in its own shuffled order.
--
-- wrk cannot tell which response answers which request, so the script counts
-- requests sent by kind and responses by status class; at the end it prints
-- one line "LOAD_JSON {...}" with those counts, wrk's totals and latency
-- percentiles, for load.py to read.

local reqs, kinds, n, i = {}, {}, 0, 0
local threads = {}
-- Globals: done() reads them from each thread with thread:get().
sent_ok, sent_bad = 0, 0
c2, c3, c4, c429, c5, cother = 0, 0, 0, 0, 0, 0

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"), "cannot open the requests file " .. tostring(args[1]))
  for line in f:lines() do
    local kind, method, path, body = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t?(.*)$")
    if kind then
      local headers = {}
      if body ~= nil and body ~= "" then
        headers["Content-Type"] = "application/json"
      else
        body = nil
      end
      n = n + 1
      reqs[n] = wrk.format(method, path, headers, body)
      kinds[n] = kind
    end
  end
  f:close()
  assert(n > 0, "no requests in " .. args[1])
  math.randomseed(7919 * (id or 1))
  for k = n, 2, -1 do
    local j = math.random(k)
    reqs[k], reqs[j] = reqs[j], reqs[k]
    kinds[k], kinds[j] = kinds[j], kinds[k]
  end
end

function request()
  i = i % n + 1
  if kinds[i] == "bad" then
    sent_bad = sent_bad + 1
  else
    sent_ok = sent_ok + 1
  end
  return reqs[i]
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    c2 = c2 + 1
  elseif status >= 300 and status < 400 then
    c3 = c3 + 1
  elseif status == 429 then
    c429 = c429 + 1
  elseif status >= 400 and status < 500 then
    c4 = c4 + 1
  elseif status >= 500 and status < 600 then
    c5 = c5 + 1
  else
    cother = cother + 1
  end
end

function done(summary, latency, requests)
  local t = { sent_ok = 0, sent_bad = 0, s2xx = 0, s3xx = 0, s4xx = 0, s429 = 0, s5xx = 0, sother = 0 }
  for _, th in ipairs(threads) do
    t.sent_ok = t.sent_ok + th:get("sent_ok")
    t.sent_bad = t.sent_bad + th:get("sent_bad")
    t.s2xx = t.s2xx + th:get("c2")
    t.s3xx = t.s3xx + th:get("c3")
    t.s4xx = t.s4xx + th:get("c4")
    t.s429 = t.s429 + th:get("c429")
    t.s5xx = t.s5xx + th:get("c5")
    t.sother = t.sother + th:get("cother")
  end
  local e = summary.errors
  io.write(string.format(
    'LOAD_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"sent_ok": %d, "sent_bad": %d, "s2xx": %d, "s3xx": %d, "s4xx": %d, "s429": %d, "s5xx": %d, "sother": %d, ' ..
    '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    t.sent_ok, t.sent_bad, t.s2xx, t.s3xx, t.s4xx, t.s429, t.s5xx, t.sother,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
