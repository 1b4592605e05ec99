-- wrk script for tcgw: POSTs one unsigned API 3.0 call and classifies every answer, so that a
-- run of refusals cannot pass for throughput.
--
--   BENCH_BODY    the JSON body (default: the seed ModifyProxyConfiguration call)
--   BENCH_ACTION  X-TC-Action (default ModifyProxyConfiguration)
--
-- An answer is "ok" when it is HTTP 200 and its body has no "Error" (a Tencent success),
-- "error" when it is HTTP 200 with "Error" in the body (a Tencent-format refusal; its Code is
-- tallied), and "http_other" for any other status. done() prints one machine-readable line
-- per figure, prefixed "bench:", which bench/bench.py reads.

local seed = '{"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}'

wrk.method = "POST"
wrk.path = "/"
wrk.body = os.getenv("BENCH_BODY") or seed
wrk.headers["Host"] = "gaap.tencentcloudapi.com"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-TC-Action"] = os.getenv("BENCH_ACTION") or "ModifyProxyConfiguration"
wrk.headers["X-TC-Version"] = "2018-05-29"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   ok = 0
   errors = 0
   http_other = 0
   codes = {}        -- error Code -> count
   first_error = ""
end

function response(status, headers, body)
   if status ~= 200 then
      http_other = http_other + 1
      if first_error == "" then
         first_error = "HTTP " .. status .. " " .. string.sub(body or "", 1, 200)
      end
      return
   end
   if body ~= nil and string.find(body, '"Error"', 1, true) then
      errors = errors + 1
      local code = string.match(body, '"Code"%s*:%s*"([^"]*)"') or "?"
      codes[code] = (codes[code] or 0) + 1
      if first_error == "" then
         first_error = string.sub(body, 1, 300)
      end
   else
      ok = ok + 1
   end
end

function done(summary, latency, requests)
   local total_ok, total_error, total_other = 0, 0, 0
   local merged = {}
   local example = ""
   for _, t in ipairs(threads) do
      total_ok = total_ok + t:get("ok")
      total_error = total_error + t:get("errors")
      total_other = total_other + t:get("http_other")
      for code, n in pairs(t:get("codes") or {}) do
         merged[code] = (merged[code] or 0) + n
      end
      if example == "" then
         example = t:get("first_error") or ""
      end
   end
   local secs = summary.duration / 1e6
   io.write(string.format("bench: requests %d\n", summary.requests))
   io.write(string.format("bench: duration_s %.3f\n", secs))
   io.write(string.format("bench: rps %.1f\n", summary.requests / secs))
   io.write(string.format("bench: ok %d\n", total_ok))
   io.write(string.format("bench: error %d\n", total_error))
   io.write(string.format("bench: http_other %d\n", total_other))
   io.write(string.format("bench: socket_errors connect=%d read=%d write=%d timeout=%d status=%d\n",
                          summary.errors.connect, summary.errors.read, summary.errors.write,
                          summary.errors.timeout, summary.errors.status))
   for _, p in ipairs({50, 90, 99, 99.9}) do
      io.write(string.format("bench: latency_p%s_us %d\n", tostring(p), latency:percentile(p)))
   end
   io.write(string.format("bench: latency_mean_us %.1f\n", latency.mean))
   io.write(string.format("bench: latency_max_us %d\n", latency.max))
   local parts = {}
   for code, n in pairs(merged) do
      table.insert(parts, code .. "=" .. n)
   end
   io.write("bench: error_codes " .. table.concat(parts, ",") .. "\n")
   io.write("bench: first_error " .. string.gsub(example, "\n", " ") .. "\n")
end
