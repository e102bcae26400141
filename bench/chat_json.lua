-- wrk script of bench/load.sh, bench/nginx.sh and bench/accounting.sh: one small OpenAI chat
-- completion per request. The key, when needed, is added by the caller with
-- -H "Authorization: Bearer ...".
wrk.method = "POST"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Hello"}]}'
wrk.headers["Content-Type"] = "application/json"

-- With WRK_LATENCY_HISTOGRAM set, the run's whole latency histogram is written to that file,
-- one "microseconds count" line per distinct latency, so that the caller can merge the
-- histograms of several runs and read a percentile over all their requests (wrk prints
-- only each run's own). wrk 4's latency object: #latency distinct values, latency(i) the
-- i-th value and its count.
function done(summary, latency, requests)
    local path = os.getenv("WRK_LATENCY_HISTOGRAM")
    if path == nil or path == "" then
        return
    end
    local file = assert(io.open(path, "w"))
    for i = 1, #latency do
        local value, count = latency(i)
        file:write(string.format("%d %d\n", value, count))
    end
    file:close()
end
