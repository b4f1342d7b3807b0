-- wrk script: POST /api/v2/alerts bodies in which every alert is unique.
--
--   wrk -t2 -c16 -d10s -s bench/wrk/alerts.lua http://127.0.0.1:9093/api/v2/alerts -- BATCH TAG
--
-- BATCH: alerts per request (default 1). TAG: a run nonce (default "run") that goes into each
-- alert's `alert_id` label together with the thread id and a per-thread counter, so no two alerts
-- of a run, nor of two runs with different tags, share a label set (Alertmanager would merge
-- them into one). Bodies are built from pre-rendered per-alert templates: per request only the
-- ids are filled in and the pieces joined with table.concat, which keeps wrk's CPU low.
--
-- response() counts 2xx and non-2xx answers per thread (and keeps one error body);
-- done() prints one line "BENCH_RESULT {json}" with the totals and the latency percentiles
-- (microseconds) for bench/ingest.py to parse.

local threads = {}

function setup(thread)
   threads[#threads + 1] = thread
   thread:set("tid", #threads)
end

-- Per-thread state (each wrk thread runs its own Lua state).
local batch = 1
local counter = 0
local id_prefix = ""
local pool = 100                  -- distinct alert templates (alertname/instance/... combos)
local first_open, next_open, close = {}, {}, {}
local parts = {}
ok_responses = 0                  -- globals: read back with thread:get() in done()
bad_responses = 0
bad_statuses = {}
error_sample = nil

local alertnames = {
   "HighCPUUsage", "DiskWillFillIn4Hours", "InstanceDown", "HighMemoryUsage",
   "KubePodCrashLooping", "HTTPErrorRateHigh", "NodeFilesystemAlmostFull",
}
local severities = { "warning", "critical", "info" }
local teams = { "sre", "platform", "storage", "web" }

local function template(k, starts_at)
   local alertname = alertnames[(k % #alertnames) + 1]
   local instance = string.format("node-%03d.prod.example.net:9100", k)
   local labels = string.format(
      '{"labels":{"alertname":"%s","instance":"%s","job":"node","severity":"%s",' ..
      '"team":"%s","alert_id":"',
      alertname, instance, severities[(k % #severities) + 1], teams[(k % #teams) + 1])
   local rest = string.format(
      '"},"annotations":{"summary":"%s on %s",' ..
      '"description":"%s has been firing on %s for more than 5 minutes (value: %d%%)."},' ..
      '"startsAt":"%s","generatorURL":"http://prometheus.example.net:9090/graph?' ..
      'g0.expr=instance%%3A%s%%3Aratio+%%3E+0.9&g0.tab=1"}',
      alertname, instance, alertname, instance, 80 + k % 20, starts_at, alertname)
   return labels, rest
end

function init(args)
   batch = tonumber(args[1]) or 1
   local tag = args[2] or "run"
   id_prefix = tag .. "-t" .. tostring(tid) .. "-"
   local starts_at = os.date("!%Y-%m-%dT%H:%M:%SZ")
   for k = 0, pool - 1 do
      local open, rest = template(k, starts_at)
      first_open[k] = open
      next_open[k] = "," .. open
      close[k] = rest
   end
   parts[1] = "["
   parts[3 * batch + 2] = "]"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local base = counter
   counter = counter + batch
   for j = 1, batch do
      local n = base + j
      local k = n % pool
      local at = 3 * j - 1
      parts[at] = (j == 1) and first_open[k] or next_open[k]
      parts[at + 1] = id_prefix .. n
      parts[at + 2] = close[k]
   end
   return wrk.format(nil, nil, nil, table.concat(parts))
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok_responses = ok_responses + 1
   else
      bad_responses = bad_responses + 1
      local key = tostring(status)
      bad_statuses[key] = (bad_statuses[key] or 0) + 1
      if error_sample == nil then
         error_sample = string.sub(body or "", 1, 300)
      end
   end
end

local function json_string(s)
   s = string.gsub(s, '[%c"\\]', function(c)
      if c == '"' then return '\\"' end
      if c == "\\" then return "\\\\" end
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. s .. '"'
end

function done(summary, latency, requests)
   local ok, bad, statuses, sample = 0, 0, {}, nil
   for _, thread in ipairs(threads) do
      ok = ok + thread:get("ok_responses")
      bad = bad + thread:get("bad_responses")
      for status, n in pairs(thread:get("bad_statuses")) do
         statuses[status] = (statuses[status] or 0) + n
      end
      sample = sample or thread:get("error_sample")
   end
   local status_json = {}
   for status, n in pairs(statuses) do
      status_json[#status_json + 1] = string.format('"%s":%d', status, n)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"ok_responses":%d,' ..
      '"bad_responses":%d,"bad_statuses":{%s},"error_sample":%s,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes, ok, bad,
      table.concat(status_json, ","), sample and json_string(sample) or "null",
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
