-- wrk script for bench/soak.sh: a mix of embedding requests of varied size across several models,
-- and malformed ones, counting every status and reporting p50/p99.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function words(n)
  local pool = {"the", "model", "runs", "fast", "on", "every", "machine", "river", "music", "garden",
                "morning", "street", "teacher", "story", "weather", "quick", "brown", "fox", "bridge"}
  local out = {}
  for i = 1, n do out[i] = pool[math.random(#pool)] end
  return table.concat(out, " ")
end

local function texts(count, length)
  local out = {}
  for i = 1, count do out[i] = '"' .. words(math.random(length)) .. '"' end
  return "[" .. table.concat(out, ",") .. "]"
end

local models = {}

function init(args)
  statuses = {}
  for i = 1, #args do models[i] = args[i] end
  math.randomseed(os.time() + math.random(1000))
end

local function embed(model, input)
  return '{"model":"' .. model .. '","input":' .. input .. ',"truncate":true}'
end

function request()
  local model = models[math.random(#models)]
  local r = math.random(100)
  local body
  if r <= 40 then body = embed(model, '"' .. words(math.random(30)) .. '"')
  elseif r <= 65 then body = embed(model, texts(16, 60))
  elseif r <= 75 then body = embed(model, texts(64, 200))
  elseif r <= 80 then body = embed(model, "[[101, 7592, 2088, 102]]")
  elseif r <= 85 then body = '{"model":"' .. model .. '","input":'
  elseif r <= 90 then body = embed("no-such-model", '"x"')
  elseif r <= 95 then body = embed(model, '""')
  else body = '{"model":"' .. model .. '","input":{"not":"valid"}}' end
  return wrk.format("POST", "/v1/embeddings", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do totals[status] = (totals[status] or 0) + count end
  end
  io.write(string.format("requests %d, errors (socket) connect %d read %d write %d timeout %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  for status, count in pairs(totals) do io.write(string.format("status %d: %d\n", status, count)) end
  io.write(string.format("latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
