-- decide.lua - wrk script for the decision benchmark (bench/run.sh, rows
-- "decide").
--
--   wrk -tT -cC -dD --latency -s decide.lua URL/v1/decide -- IDS AUTH
--
-- IDS holds percent-encoded visitor ids of the ingested store, one a line
-- with its kind (bench/pack_batches.py): an `a` id is sent as anonymousId,
-- as the browser SDK sends an anonymous visitor's, any other as userId.
-- Each request is one page's decision: a visitor
-- drawn at random (seeded per thread, so runs repeat), a page context of
-- one of five page types, and the 4 placements of bench/decide_setup.py.
-- The bodies are built once at init.

local reqs = {}
local threads = {}
local PAGES = { "home", "product", "category", "cart", "search" }

function setup(thread)
   thread:set("tid", #threads)
   threads[#threads + 1] = thread
end

local function unescape(s)
   return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function init(args)
   local headers = { ["Content-Type"] = "application/json", ["Authorization"] = args[2] }
   local n = 0
   for line in io.lines(args[1]) do
      local id, kind = line:match("^(%S+)%s*(%a?)")
      if id then
         n = n + 1
         local body = string.format(
            '{"%s":"%s","context":{"page":{"type":"%s","path":"/p/%d"},' ..
            '"device":{"type":"mobile"}},' ..
            '"placements":["home_hero","home_modal","pdp_below","cart_banner"]}',
            kind == "a" and "anonymousId" or "userId", unescape(id), PAGES[n % #PAGES + 1], n)
         reqs[#reqs + 1] = wrk.format("POST", wrk.path, headers, body)
      end
   end
   if #reqs == 0 then error("decide.lua: no ids in " .. args[1]) end
   math.randomseed(7 + (tid or 0))
end

function request()
   return reqs[math.random(#reqs)]
end
