-- wrk script for benchmarks/bench_serve.py --driver wrk.
-- Each wrk thread submits votes for its own annotators (tokens[i] with i % nthreads == id) on
-- the items the server assigned to them, with unique idempotency keys and a strength that
-- agrees with the outcome (1 = strongly prefers a); with probability RETRY_P it re-sends its
-- previous vote with the same key instead. Every 2xx answer's key is recorded, so the caller
-- can check that each acknowledged vote is in the database exactly once.
--   WRK_THREADS=T WRK_OUT=OUT_FILE wrk -t T -c C -d D -s votes.lua URL -- TOKENS SEED RETRY_P
-- TOKENS: one line per annotator, "TOKEN ITEM_ID,ITEM_ID,..." (its assigned items).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then table.insert(out, line) end
  end
  return out
end

local outcomes = { "a", "b", "tie", "both_bad" }

function init(args)
  local all = lines(args[1])
  math.randomseed(tonumber(args[2]) * 1000 + id)
  retry_p = tonumber(args[3])
  local next_threads = tonumber(os.getenv("WRK_THREADS"))
  tokens = {}
  items = {}
  for i, line in ipairs(all) do
    if (i - 1) % next_threads == id then
      local tok, list = string.match(line, "^(%S+)%s+(%S+)$")
      local its = {}
      for it in string.gmatch(list, "[^,]+") do table.insert(its, it) end
      table.insert(tokens, tok)
      table.insert(items, its)
    end
  end
  counter = 0
  sent_new = 0
  retries = 0
  nack = 0
  non2xx = 0
  acked = {}
  last = nil
end

local function strength(outcome)
  local r = 0.01 + 0.99 * math.random()
  if outcome == "a" then return string.format("%.4f", 0.5 + 0.5 * r) end
  if outcome == "b" then return string.format("%.4f", 0.5 - 0.5 * r) end
  if outcome == "tie" then return "0.5" end
  return "null"
end

function request()
  if last ~= nil and math.random() < retry_p then
    retries = retries + 1
    return last
  end
  counter = counter + 1
  sent_new = sent_new + 1
  local k = (counter % #tokens) + 1
  local its = items[k]
  local key = string.format("wrk-%d-%09d", id, counter)
  local outcome = outcomes[math.random(4)]
  local body = string.format(
    '{"idempotency_key":"%s","item_id":%s,"outcome":"%s","strength":%s}',
    key, its[math.random(#its)], outcome, strength(outcome))
  last = wrk.format("POST", "/api/votes",
    { ["Authorization"] = "Bearer " .. tokens[k], ["Content-Type"] = "application/json" }, body)
  return last
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    local k = string.match(body, '"idempotency_key":%s*"([^"]+)"')
    if k ~= nil and not acked[k] then
      acked[k] = true
      nack = nack + 1
    end
  else
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local f = io.open(os.getenv("WRK_OUT"), "w")
  local total_ack, total_new, total_retry, total_bad = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    total_ack = total_ack + t:get("nack")
    total_new = total_new + t:get("sent_new")
    total_retry = total_retry + t:get("retries")
    total_bad = total_bad + t:get("non2xx")
    for k, _ in pairs(t:get("acked")) do f:write(k, "\n") end
  end
  f:close()
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"acked":%d,"sent_new":%d,"retries":%d,"non2xx":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, total_ack, total_new, total_retry, total_bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
