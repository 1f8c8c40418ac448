-- POST /api/tokens for a rotating set of users.
local key = os.getenv("BENCH_KEY")
local counter = math.random(1000000)

request = function()
  counter = counter + 1
  return wrk.format("POST", "/api/tokens",
    { ["Content-Type"] = "application/json", ["X-API-Key"] = key },
    '{"userId":"bench-create-' .. (counter % 5000) .. '","scopes":["read"],"expiresInMinutes":60}')
end
