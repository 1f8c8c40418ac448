-- Warms a freshly started server before its measured runs: cycles through GET /healthz, POST /api/tokens/verify
-- (over every token in $BENCH_TOKENS, so a verification cache holds them all), GET /api/tokens?userId=$BENCH_USER
-- and POST /api/tokens, so that pooled connections are open and caches are full when measuring starts.
local key = os.getenv("BENCH_KEY")
local json = { ["Content-Type"] = "application/json", ["X-API-Key"] = key }
local healthz = wrk.format("GET", "/healthz")
local list = wrk.format("GET", "/api/tokens?userId=" .. os.getenv("BENCH_USER"), { ["X-API-Key"] = key })
local verifications = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  verifications[#verifications + 1] = wrk.format("POST", "/api/tokens/verify", json, '{"token":"' .. line .. '"}')
end

local threads = 0
function setup(thread)
  thread:set("offset", threads * 499)
  threads = threads + 1
end

local index, step, counter = 0, 0, 0
function init(args)
  index = (offset or 0) % #verifications
  counter = math.random(1000000)
end

request = function()
  step = step % 8 + 1
  if step == 1 then return healthz end
  if step == 2 then return list end
  if step == 3 then
    counter = counter + 1
    return wrk.format("POST", "/api/tokens", json,
      '{"userId":"bench-create-' .. (counter % 5000) .. '","scopes":["read"],"expiresInMinutes":60}')
  end
  index = index % #verifications + 1
  return verifications[index]
end
