-- batch.lua - wrk script for the ingest benchmark (bench/run.sh, row "ingest").
--
--   wrk -tT -cC -dCAP -s batch.lua URL/v1/batch -- BODIES DIR T AUTH
--
-- BODIES holds one request body a line (bench/pack_batches.py). Thread i of T
-- sends lines i, i+T, i+2T, ... exactly once each, counts the answers by
-- status, and stops when every one of its bodies has been answered. No body is
-- ever sent twice: a lost answer shows up as a stall, not as a retry.
--
-- A connection takes a body in delay() (which wrk calls before each request)
-- and sends it in request(); once the thread's share is handed out, delay()
-- parks the connection for an hour, so nothing else is sent.
--
-- Progress goes to DIR/progress.<i> (answers so far: first at the end of
-- init, then every 25 answers); when the thread is done it writes DIR/done.<i>.
-- bench/run.sh watches those files to detect a stall and interrupts wrk
-- (SIGINT) when every thread is done. done() prints `batch_*` lines that
-- run.sh parses.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bsp_bench_timespec;
int clock_gettime(int clk, bsp_bench_timespec *ts);
int usleep(unsigned int usec);
]]
local ts = ffi.new("bsp_bench_timespec")
local function now()
   ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC: comparable across threads
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local PARK_MS = 3600 * 1000

-- main state ------------------------------------------------------------------
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   threads[#threads + 1] = thread
end

-- thread state ----------------------------------------------------------------
local reqs = {}      -- formatted requests of this thread's share
share = 0            -- globals, so that done() can read them with thread:get
claimed = 0          -- bodies handed to a connection by delay()
sent = 0             -- bodies given to wrk by request()
answered = 0
ok = 0
status = {}          -- status code -> count
rejected = 0         -- messages refused inside 200 answers
extra = 0            -- bodies taken without a claim (wrk re-asks after a socket error)
fillers = 0          -- GET /healthz sent because wrk asked for more than the share
t_first = 0
t_last = 0
finished = false
local dir, nthreads
local started = false
local filler

local function write_file(name, text)
   local f = io.open(dir .. "/" .. name, "w")
   if f then
      f:write(text)
      f:close()
   end
end

local function finish()
   if finished then return end
   finished = true
   t_last = now()
   write_file("progress." .. tid, tostring(answered) .. "\n")
   write_file("done." .. tid, string.format("%d %d %d\n", share, answered, ok))
   wrk.thread:stop()
end

function init(args)
   local file = args[1]
   dir, nthreads = args[2], tonumber(args[3])
   local headers = { ["Content-Type"] = "application/json", ["Authorization"] = args[4] }
   local i = 0
   for line in io.lines(file) do
      if i % nthreads == tid and #line > 0 then
         reqs[#reqs + 1] = wrk.format("POST", wrk.path, headers, line)
      end
      i = i + 1
   end
   share = #reqs
   filler = wrk.format("GET", "/healthz", {})
   write_file("progress." .. tid, "0\n")
end

-- wrk starts each thread as soon as its init is done, and loads the next
-- thread's share meanwhile; every thread waits until all have loaded (each
-- writes its progress file at the end of init), so the clock starts together.
-- The wait blocks the thread's event loop before its first request: whatever
-- delay() returns, wrk sends a request after it.
local function loaded()
   for i = 0, nthreads - 1 do
      local f = io.open(dir .. "/progress." .. i, "r")
      if not f then return false end
      f:close()
   end
   return true
end

function delay()
   if not started then
      while not loaded() do ffi.C.usleep(20000) end
      started = true
      t_first = now()
      if share == 0 then finish() end
   end
   if claimed < share then
      claimed = claimed + 1
      return 0
   end
   return PARK_MS
end

function request()
   -- wrk calls request() once before the threads start (to check the request
   -- parses) and again after a socket error without calling delay(); neither
   -- has a claim.
   if not started then return filler end
   if sent < claimed or claimed < share then
      if sent >= claimed then claimed = claimed + 1; extra = extra + 1 end
      sent = sent + 1
      return reqs[sent]
   end
   fillers = fillers + 1
   return filler
end

function response(code, headers, body)
   answered = answered + 1
   status[code] = (status[code] or 0) + 1
   if code == 200 then
      ok = ok + 1
      -- 200 with some messages refused: {"success":true,"accepted":N,"rejected":[{"index":..
      if body:find('"rejected"', 1, true) then
         local _, n = body:gsub('"index":', "")
         rejected = rejected + n
      end
   end
   if answered % 25 == 0 then write_file("progress." .. tid, tostring(answered) .. "\n") end
   if sent >= share and answered >= sent + fillers then finish() end
end

function done(summary, latency, requests)
   local first, last = math.huge, 0
   local tot = { share = 0, sent = 0, answered = 0, ok = 0, rejected = 0, extra = 0, fillers = 0,
                 finished = 0 }
   local codes = {}
   for _, t in ipairs(threads) do
      for k, _ in pairs(tot) do
         if k ~= "finished" then tot[k] = tot[k] + (t:get(k) or 0) end
      end
      if t:get("finished") then tot.finished = tot.finished + 1 end
      local tf, tl = t:get("t_first") or 0, t:get("t_last") or 0
      if tf > 0 and tf < first then first = tf end
      if tl > last then last = tl end
      for code, n in pairs(t:get("status") or {}) do
         codes[code] = (codes[code] or 0) + n
      end
   end
   local elapsed = (last > 0 and first < math.huge) and (last - first) or 0
   io.write(string.format("batch_threads %d\nbatch_threads_finished %d\n", #threads, tot.finished))
   io.write(string.format("batch_bodies %d\nbatch_sent %d\nbatch_answered %d\nbatch_ok %d\n",
      tot.share, tot.sent, tot.answered, tot.ok))
   io.write(string.format("batch_rejected_messages %d\n", tot.rejected))
   io.write(string.format("batch_extra_requests %d\nbatch_fillers %d\nbatch_elapsed_s %.6f\n",
      tot.extra, tot.fillers, elapsed))
   for code, n in pairs(codes) do
      io.write(string.format("batch_status %d %d\n", code, n))
   end
   io.write(string.format("batch_latency_p50_ms %.3f\nbatch_latency_p99_ms %.3f\nbatch_latency_max_ms %.3f\n",
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
   io.write(string.format("batch_socket_errors %d %d %d %d\n", summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.timeout))
end
