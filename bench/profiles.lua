-- profiles.lua - wrk script for the profile-read benchmark (bench/run.sh, row
-- "profile read").
--
--   wrk -tT -cC -dD --latency -s profiles.lua URL/v1/admin/profiles -- IDS AUTH
--
-- IDS holds percent-encoded visitor ids (userIds and anonymousIds seen in the
-- simulated stream, bench/pack_batches.py), one a line, each followed by its
-- kind (u or a), which the admin API does not need. Each request looks up
-- one id drawn at random (seeded per thread, so runs repeat).

local reqs = {}
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   threads[#threads + 1] = thread
end

function init(args)
   local headers = { ["Authorization"] = args[2] }
   for line in io.lines(args[1]) do
      local id = line:match("^(%S+)")
      if id then
         reqs[#reqs + 1] = wrk.format("GET", wrk.path .. "/" .. id, headers)
      end
   end
   if #reqs == 0 then error("profiles.lua: no ids in " .. args[1]) end
   math.randomseed(42 + (tid or 0))
end

function request()
   return reqs[math.random(#reqs)]
end
