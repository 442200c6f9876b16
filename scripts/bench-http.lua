-- wrk script for scripts/bench-http: single-unit orders on one shared pool, posted
-- with the operator's token to POST /v1/stores/{store}/orders, the stores in turn
-- (US, CA, MX), every order id unique (run id, thread number, counter).
--
-- Read from the environment (scripts/bench-http sets them):
--   BENCH_TOKEN   the operator's bearer token
--   BENCH_SELLER  the seller id of the lines
--   BENCH_SKU     the SKU of the lines
--   BENCH_RUN     a run id, so that a rerun against the same database never replays
--   BENCH_STORES  optional, comma-separated (default US,CA,MX)
--   BENCH_PENDING optional: a file done() writes the unanswered order ids to, one a line
--
-- wrk stops with up to one request in flight on every connection: the server may have
-- applied those orders without wrk reading the 201. Each thread keeps the ids it sent
-- and has not seen answered (the answer's body names its order id), so that the
-- caller can resolve them (send them again: 200 = applied during the run, 201 = applied
-- now) and check the pool exactly.
--
-- done() prints one line of key=value figures that scripts/bench-http reads:
--   wrk_created (201 answers), wrk_replayed (200), wrk_4xx, wrk_5xx, wrk_other,
--   wrk_unanswered (ids sent whose answer wrk never read), wrk_unmatched (answers
--   naming no pending id: error bodies),
--   wrk_requests, wrk_duration_s, wrk_p50_ms, wrk_p99_ms, wrk_max_ms and wrk's socket
--   errors (connect, read, write, timeout, status).

local token = os.getenv("BENCH_TOKEN") or error("BENCH_TOKEN is not set")
local seller = os.getenv("BENCH_SELLER") or error("BENCH_SELLER is not set")
local sku = os.getenv("BENCH_SKU") or error("BENCH_SKU is not set")
local run = os.getenv("BENCH_RUN") or tostring(os.time())

local stores = {}
for s in string.gmatch(os.getenv("BENCH_STORES") or "US,CA,MX", "[^,]+") do
  stores[#stores + 1] = s
end

-- Main thread: number the threads and keep them for done().
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

-- Per thread (each has its own Lua state; thread_id was set by setup()).
local headers = {
  ["Authorization"] = "Bearer " .. token,
  ["Content-Type"] = "application/json",
}
local paths = {}
local body_head_id
local body_tail
local n = 0
created, replayed, c4xx, c5xx, other, unmatched = 0, 0, 0, 0, 0, 0
pending = {}

function init(args)
  for i, s in ipairs(stores) do
    paths[i] = "/v1/stores/" .. s .. "/orders"
  end
  body_head_id = run .. "-t" .. tostring(thread_id) .. "-"
  body_tail = '","lines":[{"seller_id":"' .. seller .. '","sku":"' .. sku .. '","quantity":1}]}'
end

function request()
  n = n + 1
  local i = (n + thread_id) % #paths + 1
  local id = body_head_id .. n
  pending[id] = stores[i]
  return wrk.format("POST", paths[i], headers, '{"order_id":"' .. id .. body_tail)
end

function response(status, headers, body)
  local id = body and string.match(body, '"order_id":"([^"]+)"')
  if id and pending[id] then
    pending[id] = nil
  else
    unmatched = unmatched + 1
  end
  if status == 201 then
    created = created + 1
  elseif status == 200 then
    replayed = replayed + 1
  elseif status >= 400 and status < 500 then
    c4xx = c4xx + 1
  elseif status >= 500 then
    c5xx = c5xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { created = 0, replayed = 0, c4xx = 0, c5xx = 0, other = 0, unmatched = 0 }
  local out = os.getenv("BENCH_PENDING")
  local f = out and assert(io.open(out, "w"))
  local unanswered = 0
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + (tonumber(thread:get(k)) or 0)
    end
    for id, store in pairs(thread:get("pending") or {}) do
      unanswered = unanswered + 1
      if f then f:write(store, " ", id, "\n") end
    end
  end
  if f then f:close() end
  local e = summary.errors
  io.write(string.format(
    "wrk_created=%d wrk_replayed=%d wrk_4xx=%d wrk_5xx=%d wrk_other=%d wrk_unanswered=%d " ..
    "wrk_unmatched=%d wrk_requests=%d " ..
    "wrk_duration_s=%.3f wrk_p50_ms=%.3f wrk_p99_ms=%.3f wrk_max_ms=%.3f " ..
    "wrk_err_connect=%d wrk_err_read=%d wrk_err_write=%d wrk_err_timeout=%d wrk_err_status=%d\n",
    t.created, t.replayed, t.c4xx, t.c5xx, t.other, unanswered, t.unmatched, summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    e.connect, e.read, e.write, e.timeout, e.status))
end
