-- bench/rotate.lua: wrk script for bench/poll. Each request asks the simulator's
-- DHL endpoint for the next tracking number of the file named by
-- BENCH_NUMBERS (one per line), as the poller does, with the same headers.
local numbers = {}
for line in io.lines(os.getenv("BENCH_NUMBERS")) do
  numbers[#numbers + 1] = line
end
local i = math.random(#numbers)
wrk.headers["DHL-API-Key"] = os.getenv("BENCH_DHL_KEY")
wrk.headers["Accept"] = "application/json"

request = function()
  i = i % #numbers + 1
  return wrk.format("GET", "/track/shipments?trackingNumber=" .. numbers[i] .. "&language=en")
end
