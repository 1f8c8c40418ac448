-- Warms a freshly started server before its measured runs: cycles through GET /healthz, POST /api/tokens/verify
-- (over every token in $BENCH_TOKENS, as verify.lua does, so a verification cache holds them all),
-- GET /api/tokens?userId=$BENCH_USER and POST /api/tokens, so that pooled connections are open and caches are
-- full when measuring starts. Run from the repository's root.
dofile("scripts/lib/wrk/verify.lua")
local verification = request
local startVerifying = init
local key = os.getenv("BENCH_KEY")
local healthz = wrk.format("GET", "/healthz")
local list = wrk.format("GET", "/api/tokens?userId=" .. os.getenv("BENCH_USER"), { ["X-API-Key"] = key })

local step, counter = 0, 0
function init(args)
  startVerifying(args)
  counter = math.random(1000000)
end

request = function()
  step = step % 8 + 1
  if step == 1 then return healthz end
  if step == 2 then return list end
  if step == 3 then
    counter = counter + 1
    return wrk.format("POST", "/api/tokens", { ["Content-Type"] = "application/json", ["X-API-Key"] = key },
      '{"userId":"bench-create-' .. (counter % 5000) .. '","scopes":["read"],"expiresInMinutes":60}')
  end
  return verification()
end
