-- PATCH one attribute, cycling over the P.n loaded ids.
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Link"] = P.link
if P.auth ~= nil then wrk.headers["Authorization"] = P.auth end
local i = 0

function request()
  i = i + 1
  local n = (i * 7919 + tid * 104729) % P.n
  return wrk.format("PATCH", P.base .. "/entities/" .. P.id_prefix .. n .. "/attrs/" .. P.attr, nil,
    '{"value":' .. (i % 100) .. '}')
end
