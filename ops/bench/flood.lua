-- wrk script for ops/bench/tenant-isolation: anonymous POST /v1/cer/verify of one maximum-size body
-- (BENCH_FLOOD_FILE) over and over; counts answers by status.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  local f = assert(io.open(os.getenv("BENCH_FLOOD_FILE"), "rb"))
  body = f:read("*a")
  f:close()
  ok, busy, other = 0, 0, 0
  wrk.method = "POST"
  wrk.path = "/v1/cer/verify"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = body
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 503 then busy = busy + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local o, b, x = 0, 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("busy"); x = x + t:get("other") end
  io.write(string.format("FLOOD requests=%d seconds=%.3f ok=%d busy=%d other=%d bytes=%d\n",
    summary.requests, summary.duration / 1e6, o, b, x, tonumber(os.getenv("BENCH_FLOOD_BYTES")) or 0))
end
