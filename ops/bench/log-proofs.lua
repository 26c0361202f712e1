-- wrk script: GET a random entry, inclusion proof or consistency proof of a log of SIZE entries.
-- MODE is entry, inclusion or consistency (environment variables).
local size = tonumber(os.getenv("SIZE"))
local mode = os.getenv("MODE")
math.randomseed(os.time())
request = function()
    local i = math.random(0, size - 1)
    if mode == "entry" then
        return wrk.format("GET", "/v1/log/entries/" .. i)
    elseif mode == "inclusion" then
        return wrk.format("GET", "/v1/log/proof/inclusion?index=" .. i .. "&size=" .. size)
    else
        return wrk.format("GET", "/v1/log/proof/consistency?from=" .. (i + 1) .. "&to=" .. size)
    end
end
local errors = 0
response = function(status, headers, body)
    if status ~= 200 then errors = errors + 1 end
end
done = function(summary, latency, requests)
    io.write(string.format("RESULT %s %.1f %.3f %.3f %d\n", mode, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
