-- wrk script: POST one fixed body (a file) and report percentiles as one JSON line.
-- usage: wrk ... -s v2_post.lua URL -- BODY_FILE [INFERENCE_HEADER_LENGTH]
-- With INFERENCE_HEADER_LENGTH the body is a V2 binary-tensor request (JSON header + raw
-- bytes) and the header Inference-Header-Content-Length is sent; else it is V2 JSON.

function init(args)
   local file = assert(io.open(args[1], "rb"))
   wrk.body = file:read("*a")
   file:close()
   wrk.method = "POST"
   if args[2] then
      wrk.headers["Content-Type"] = "application/octet-stream"
      wrk.headers["Inference-Header-Content-Length"] = args[2]
   else
      wrk.headers["Content-Type"] = "application/json"
   end
   local authorization = os.getenv("WRK_AUTHORIZATION")  -- serving.py --api-key
   if authorization then
      wrk.headers["Authorization"] = authorization
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
      '"mean_us": %.1f, "non_2xx": %d, "errors": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.mean, e.status, e.connect + e.read + e.write + e.timeout))
end
