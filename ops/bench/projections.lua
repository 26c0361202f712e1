-- wrk script: GET the provenance of a random synthetic certificate (MODE=provenance) or a random entry
-- (MODE=entry, with the admin secret) of a log of SIZE attestation-shaped entries.
local size = tonumber(os.getenv("SIZE"))
local mode = os.getenv("MODE")
local secret = os.getenv("ADMIN_SECRET")
math.randomseed(os.time())
request = function()
    local i = math.random(0, size - 1)
    if mode == "entry" then
        return wrk.format("GET", "/v1/log/entries/" .. i, {["X-Admin-Secret"] = secret})
    end
    return wrk.format("GET", string.format("/v1/provenance/sha256:%064x", i))
end
done = function(summary, latency, requests)
    io.write(string.format("RESULT %s %.1f %.3f %.3f %d\n", mode, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
