-- Requests as 1,000 signed-in callers in turn (the Easy Auth principal id the platform would
-- set), so a per-caller rate limit is exercised without refusing anyone; reports like report.lua.
dofile("bench/report.lua")
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, { ["X-MS-CLIENT-PRINCIPAL-ID"] = "caller-" .. (n % 1000) })
end
