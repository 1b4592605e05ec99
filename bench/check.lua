-- wrk script of the benchmark: POSTs the seed call (or BENCH_BODY) and checks EVERY answer, so
-- that fast refusals or garbage cannot pass for throughput.
--
--   BENCH_BODY    the JSON body (default: the seed ModifyProxyConfiguration call)
--   BENCH_ACTION  X-TC-Action (default ModifyProxyConfiguration)
--
-- Each answer is exactly one of:
--   ok          HTTP 2xx whose body has "RequestId" and no "Error" (a Tencent success)
--   wrong       HTTP 2xx without "RequestId", or with "Error" (an error body or garbage)
--   non2xx      any other HTTP status
-- ok answers are also tallied by the upstream protocol the benchmark's upstream names in its
-- RequestId ("HTTP/1.1-..." or "HTTP/2.0-..."), which shows the protocol each contender used
-- upstream. done() prints one "bench: KEY VALUE" line per figure for bench.py.

local seed = '{"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}'

wrk.method = "POST"
wrk.path = "/"
wrk.body = os.getenv("BENCH_BODY") or seed
wrk.headers["Host"] = "gaap.tencentcloudapi.com"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-TC-Action"] = os.getenv("BENCH_ACTION") or "ModifyProxyConfiguration"
wrk.headers["X-TC-Version"] = "2018-05-29"
if os.getenv("BENCH_AUTHORIZATION") then
   wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   ok = 0
   wrong = 0
   non2xx = 0
   h1 = 0
   h2 = 0
   first_bad = ""
end

local find = string.find

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_bad == "" then
         first_bad = "HTTP " .. status .. " " .. string.sub(body or "", 1, 200)
      end
      return
   end
   if body == nil or not find(body, '"RequestId"', 1, true) or find(body, '"Error"', 1, true) then
      wrong = wrong + 1
      if first_bad == "" then
         first_bad = "HTTP " .. status .. " " .. string.sub(body or "", 1, 300)
      end
      return
   end
   ok = ok + 1
   if find(body, 'HTTP/2', 1, true) then
      h2 = h2 + 1
   elseif find(body, 'HTTP/1', 1, true) then
      h1 = h1 + 1
   end
end

function done(summary, latency, requests)
   local t_ok, t_wrong, t_non2xx, t_h1, t_h2 = 0, 0, 0, 0, 0
   local example = ""
   for _, t in ipairs(threads) do
      t_ok = t_ok + t:get("ok")
      t_wrong = t_wrong + t:get("wrong")
      t_non2xx = t_non2xx + t:get("non2xx")
      t_h1 = t_h1 + t:get("h1")
      t_h2 = t_h2 + t:get("h2")
      if example == "" then
         example = t:get("first_bad") or ""
      end
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format("bench: requests %d\n", summary.requests))
   io.write(string.format("bench: duration_s %.3f\n", secs))
   io.write(string.format("bench: ok %d\n", t_ok))
   io.write(string.format("bench: wrong %d\n", t_wrong))
   io.write(string.format("bench: non2xx %d\n", t_non2xx))
   io.write(string.format("bench: upstream_h1 %d\n", t_h1))
   io.write(string.format("bench: upstream_h2 %d\n", t_h2))
   io.write(string.format("bench: sock_connect %d\n", e.connect))
   io.write(string.format("bench: sock_read %d\n", e.read))
   io.write(string.format("bench: sock_write %d\n", e.write))
   io.write(string.format("bench: sock_timeout %d\n", e.timeout))
   for _, p in ipairs({50, 90, 99, 99.9}) do
      io.write(string.format("bench: p%s_us %d\n", tostring(p), latency:percentile(p)))
   end
   io.write(string.format("bench: mean_us %.1f\n", latency.mean))
   io.write(string.format("bench: max_us %d\n", latency.max))
   io.write("bench: first_bad " .. string.gsub(example, "\n", " ") .. "\n")
end
