-- A fixed GET: P.path with the Link header P.link (empty for the ceiling).
wrk.method = "GET"
wrk.path = P.path
wrk.headers["Accept"] = "application/json"
if P.link ~= "" then wrk.headers["Link"] = P.link end
if P.auth ~= nil then wrk.headers["Authorization"] = P.auth end
