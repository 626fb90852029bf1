-- Appended to every scenario: counts non-2xx answers per thread and prints one JSON line at the end.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

non2xx = 0
bad_sample = ""

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    bad_sample = status .. " " .. string.sub(body or "", 1, 160)
  end
end

function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    local s = t:get("bad_sample")
    if s and s ~= "" then sample = s end
  end
  sample = string.gsub(sample, '[%c"\\]', " ")
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,'
      .. '"p50_us":%.1f,"p95_us":%.1f,"p99_us":%.1f,"sample":"%s"}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), sample))
end
