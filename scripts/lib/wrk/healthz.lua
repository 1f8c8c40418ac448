-- GET /healthz: the HTTP ceiling of this very server.
request = function()
  return wrk.format("GET", "/healthz")
end
