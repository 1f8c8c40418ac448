-- GET /api/tokens?userId=$BENCH_USER: one page of a user's tokens. The request is formatted once, up front.
local prepared = wrk.format("GET", "/api/tokens?userId=" .. os.getenv("BENCH_USER"), { ["X-API-Key"] = os.getenv("BENCH_KEY") })

request = function()
  return prepared
end
