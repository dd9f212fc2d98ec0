-- Replay a request file (one request per line: METHOD \t PATH \t HEADERS \t BODY, headers as
-- "Name: value" joined by \x1f) in order, each thread taking every n-th line from an offset, and
-- report what wrk cannot: the count of non-2xx answers per status, and how many lines were used.
-- Usage: wrk ... -s replay.lua URL -- FILE OFFSET NTHREADS

local threads = {}
local created = 0

function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end

local reqs = {}
local n = 0
local i = 0
local step = 1

function init(args)
  local file, offset = args[1], tonumber(args[2])
  step = tonumber(args[3])
  local sep = string.char(31)
  for line in io.lines(file) do
    local method, path, hdrs, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if method then
      local headers = {}
      for k, v in pairs(wrk.headers) do headers[k] = v end
      if hdrs ~= "" then
        for pair in (hdrs .. sep):gmatch("(.-)" .. sep) do
          local k, v = pair:match("^([^:]+):%s*(.*)$")
          if k then headers[k] = v end
        end
      end
      if body == "" then body = nil end
      n = n + 1
      reqs[n] = wrk.format(method, path, headers, body)
    end
  end
  i = offset + tid
  nlines = n
  non2xx = 0
  sent = 0
  codes = {}
end

function request()
  local r = reqs[(i % n) + 1]
  i = i + step
  sent = sent + 1
  return r
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  local key = tostring(status)
  codes[key] = (codes[key] or 0) + 1
end

function done(summary, latency, requests)
  local non, used, lines = 0, 0, 0
  local all = {}
  for _, t in ipairs(threads) do
    non = non + t:get("non2xx")
    used = used + t:get("sent")
    lines = t:get("nlines")
    local c = t:get("codes")
    for k, v in pairs(c) do all[k] = (all[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(all) do table.insert(parts, string.format('"%s":%d', k, v)) end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"non2xx":%d,"codes":{%s},"sent":%d,"lines":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, non, table.concat(parts, ","), used, lines,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
