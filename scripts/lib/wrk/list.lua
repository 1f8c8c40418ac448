-- GET /api/tokens?userId=$BENCH_USER: one page of a user's tokens.
local key = os.getenv("BENCH_KEY")
local path = "/api/tokens?userId=" .. os.getenv("BENCH_USER")

request = function()
  return wrk.format("GET", path, { ["X-API-Key"] = key })
end
