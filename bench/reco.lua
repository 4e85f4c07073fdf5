-- reco.lua - wrk script for the recommendation benchmark (bench/run.sh, rows
-- "recommendations").
--
--   wrk -tT -cC -dD -s reco.lua URL/v1/recommendations -- AUTH
--
-- POSTs personalized requests (n = 20, exclude purchased) for the customers
-- of the imported Online Retail file (ids 12346..18287; ids that are not
-- customers are visitors nobody knows, answered too). Built once at init.

local reqs = {}
local n = 0

function init(args)
   local headers = { ["Content-Type"] = "application/json", ["Authorization"] = args[1] }
   for i = 1, 2000 do
      local body = string.format(
         '{"userId":"%d","strategy":"personalized","n":20,"filters":{"exclude_purchased":false}}',
         12346 + (i * 7919) % 5942)
      reqs[i] = wrk.format("POST", wrk.path, headers, body)
   end
end

function request()
   n = n % #reqs + 1
   return reqs[n]
end
