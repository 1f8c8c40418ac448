-- GET /healthz: the HTTP ceiling of this very server. Like every script here, it formats its requests once, up
-- front, so that wrk (which shares the cores with the server) spends as little as it can per request.
local prepared = wrk.format("GET", "/healthz")

request = function()
  return prepared
end
