-- POST /api/tokens/verify, rotating over the tokens in $BENCH_TOKENS (one per line), each thread from its own offset.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local key = os.getenv("BENCH_KEY")
local index = math.random(#tokens)

request = function()
  index = index % #tokens + 1
  return wrk.format("POST", "/api/tokens/verify",
    { ["Content-Type"] = "application/json", ["X-API-Key"] = key },
    '{"token":"' .. tokens[index] .. '"}')
end
