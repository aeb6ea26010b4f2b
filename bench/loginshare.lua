-- wrk script of the benchmark harness (bench/): POSTs Kayako LoginShare
-- forms rotating over BENCH_USERS accounts, counts answers that are a
-- success document, and prints one JSON line that bench parses.
local users = tonumber(os.getenv("BENCH_USERS"))
local password = os.getenv("BENCH_PASSWORD")
local path = os.getenv("BENCH_PATH") or "/loginshare/user"

local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

function init(args)
  -- Every request is built once here, so the Lua cost per request is a
  -- table lookup, the same for every target.
  reqs = {}
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  for i = 0, users - 1 do
    local body = string.format("username=user%04d&password=%s&ipaddress=203.0.113.%d", i, password, i % 250 + 1)
    reqs[i + 1] = wrk.format("POST", path, headers, body)
  end
  n = id * 7919 -- threads start at different accounts
  good = 0
  bad = 0
end

function request()
  n = n + 1
  return reqs[(n % users) + 1]
end

function response(status, headers, body)
  if status == 200 and body:find("<result>1</result>", 1, true) then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"good":%d,"bad":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, g, b,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
