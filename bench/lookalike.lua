-- lookalike.lua - wrk script for the lookalike row of bench/run.sh: GET
-- /v1/admin/segments/high_value/lookalike?n=20 with the admin key.
--
--   wrk -tT -cC -dD -s lookalike.lua URL -- "Bearer ADMIN_KEY"

function init(args)
   wrk.headers["Authorization"] = args[1]
end
