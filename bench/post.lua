-- wrk script: POST /api/messages with JSON bodies that vary the user
-- (user_1..user_1000) and the content (1-4 sentences from a small vocabulary,
-- some with multi-byte UTF-8), so the server never sees one cached body.
-- At the end it prints one JSON line (prefix "WRK_JSON ") with throughput,
-- latency percentiles and status counts.
wrk.method = "POST"
wrk.path = "/api/messages"
wrk.headers["Content-Type"] = "application/json"

local words = { "the", "feed", "is", "fast", "café", "naïve", "deploy", "green", "build", "lunch",
                "message", "stream", "über", "résumé", "queue", "store", "again", "today", "🙂", "ok" }
local bodies = {}

function init(args)
  local seed = tonumber(wrk.thread and 0 or 0) + os.time()
  math.randomseed(seed + math.random(1, 1000000))
  for i = 1, 1000 do
    local parts = {}
    local n = math.random(4, 40)
    for j = 1, n do parts[#parts + 1] = words[math.random(1, #words)] end
    local content = table.concat(parts, " ") .. " #w" .. i
    bodies[i] = string.format('{"user_id":"user_%d","content":"%s"}', math.random(1, 1000), content)
  end
end

local counter = 0
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])
end

function done(summary, latency, requests)
  local s = summary
  local secs = s.duration / 1e6
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"non_2xx_3xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"lat_ms":{"mean":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"p99_9":%.3f,"max":%.3f}}\n',
    s.requests, secs, s.requests / secs, s.errors.status, s.errors.connect, s.errors.read, s.errors.write, s.errors.timeout,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
