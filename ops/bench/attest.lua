-- wrk script for ops/bench/attest: POST /api/attest with distinct bundles (one per request), read
-- from BENCH_BUNDLE_FILE; thread t of T takes lines t, t+T, t+2T, … so no bundle is sent twice.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  bundles = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_BUNDLE_FILE")) do
    if i % nthreads == id then bundles[#bundles + 1] = line end
    i = i + 1
  end
  next_bundle = 1
  exhausted = 0
  non200 = 0
  replays = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_API_KEY")
end

function request()
  if next_bundle > #bundles then
    exhausted = exhausted + 1
    next_bundle = 1
  end
  local body = bundles[next_bundle]
  next_bundle = next_bundle + 1
  return wrk.format(nil, "/api/attest", nil, body)
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
  if headers["X-Ledger-Replayed"] then replays = replays + 1 end
end

function done(summary, latency, requests)
  local bad, rep, ex = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    rep = rep + t:get("replays")
    ex = ex + t:get("exhausted")
  end
  io.write(string.format("RESULT requests=%d seconds=%.3f p50_us=%d p99_us=%d non200=%d replays=%d wrapped=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99), bad, rep, ex,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
