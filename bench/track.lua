-- track.lua - wrk script for the small-call benchmark (bench/run.sh, row "track").
--
--   wrk -tT -cC -dD -s track.lua URL/v1/track -- AUTH
--
-- POSTs ~200-byte Segment track calls with no messageId, so every call is a
-- new event, spread over 10,000 anonymous visitors (one hot profile would
-- flatter the coalescing writer). The requests are built once at init;
-- request() only hands the next one over.

local VISITORS = 10000
local reqs = {}
local n = 0
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   threads[#threads + 1] = thread
end

function init(args)
   local headers = { ["Content-Type"] = "application/json", ["Authorization"] = args[1] }
   local categories = { "Shoes", "Dresses", "Lamps", "Sofas", "Mugs", "Candles", "Rugs", "Bags" }
   for v = 1, VISITORS do
      local body = string.format(
         '{"type":"track","anonymousId":"bench-anon-%06d","event":"Product Viewed",' ..
         '"properties":{"product_id":"SKU-%05d","category":"%s","price":%d.95,"currency":"EUR"},' ..
         '"context":{"page":{"path":"/p/%05d"}}}',
         v, (v * 7919) % 20000, categories[v % #categories + 1], 5 + v % 200, (v * 7919) % 20000)
      reqs[v] = wrk.format("POST", wrk.path, headers, body)
   end
   n = (tid or 0) * 977 -- threads start at different visitors
end

function request()
   n = n % VISITORS + 1
   return reqs[n]
end
