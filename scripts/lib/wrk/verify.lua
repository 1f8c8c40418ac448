-- POST /api/tokens/verify, rotating over the tokens in $BENCH_TOKENS (one per line), each thread from its own
-- offset. The requests are formatted once, up front.
local key = os.getenv("BENCH_KEY")
local prepared = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  prepared[#prepared + 1] = wrk.format("POST", "/api/tokens/verify",
    { ["Content-Type"] = "application/json", ["X-API-Key"] = key },
    '{"token":"' .. line .. '"}')
end

local threads = 0
function setup(thread)
  thread:set("offset", threads * 499)
  threads = threads + 1
end

local index = 0
function init(args)
  index = (offset or 0) % #prepared
end

request = function()
  index = index % #prepared + 1
  return prepared[index]
end
