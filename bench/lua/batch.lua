-- POST /entityOperations/upsert with P.batch new entities per request.
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Link"] = P.link
local i = 0

function request()
  i = i + 1
  local parts = {}
  for k = 1, P.batch do
    parts[k] = P.pre .. P.id_prefix .. tid .. "-" .. i .. "-" .. k .. P.post
  end
  return wrk.format("POST", P.base .. "/entityOperations/upsert", nil, "[" .. table.concat(parts, ",") .. "]")
end
