-- POST /entities with an id unique per request: run prefix, thread id, counter.
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Link"] = P.link
local i = 0

function request()
  i = i + 1
  local id = P.id_prefix .. tid .. "-" .. i
  return wrk.format("POST", P.base .. "/entities", nil, P.pre .. id .. P.post)
end
