// chaostoolkit-ray load script: open-loop (constant-arrival-rate) inference
// load. Every parameter is an environment variable, so the same script runs
// locally (`k6 run -e RATE=20 load.js`), in a Kubernetes Job and under the
// k6-operator.
//
//   TARGET_URL   base URL of the service (required), e.g. http://my-nlb:8000
//   TARGET_PATH  path appended to TARGET_URL (default "/")
//   METHOD       GET or POST (default POST)
//   PAYLOAD      request body for POST (default {})
//   CONTENT_TYPE Content-Type of the body (default application/json)
//   RATE         requests per second (default 10)
//   DURATION     how long, k6 duration syntax (default 5m)
//   TIMEOUT      per-request timeout (default 5s)
//   VUS          pre-allocated VUs (default RATE x TIMEOUT + 10, at most MAX_VUS)
//   MAX_VUS      VU ceiling (default RATE x TIMEOUT x 1.5 + 10: enough VUs for
//                every request of a blackhole outage to wait out its timeout,
//                so k6 sends them instead of dropping them)
//   EXPECT_STATUS comma-separated accepted statuses (default 200-299)
//   THRESHOLD_FAILURE_RATE  fail when http_req_failed rate >= this (default 0.05; "" disables)
//   THRESHOLD_P95_MS / THRESHOLD_P99_MS  fail when p(95)/p(99) latency >= this ("" disables, default)
//   SUMMARY_PATH  file for the JSON summary (default summary.json; "" disables)
//   SUMMARY_STDOUT "true" prints the summary between marker lines (in-cluster runs read the log)
//
// Every request carries its send time (epoch ms) as the k6 metadata
// `sent_ms` (metadata, unlike tags, creates no time series), so the
// per-request timeline is keyed by when a request left, not when k6
// recorded its end. Iterations k6 could not start (no free VU) are
// `dropped_iterations`: the summary reports them, and chaosray counts them as
// failed requests.
import http from 'k6/http';
import exec from 'k6/execution';

const env = (name, fallback) => (__ENV[name] === undefined ? fallback : __ENV[name]);

const TARGET_URL = env('TARGET_URL', '');
if (!TARGET_URL) {
  throw new Error('TARGET_URL is required (base URL of the inference service)');
}
const URL = TARGET_URL.replace(/\/$/, '') + env('TARGET_PATH', '/');
const METHOD = env('METHOD', 'POST').toUpperCase();
const PAYLOAD = env('PAYLOAD', '{}');
const RATE = parseInt(env('RATE', '10'), 10);
if (!(RATE > 0)) {
  throw new Error(`RATE must be a positive integer, got "${env('RATE', '')}"`);
}
const TIMEOUT = env('TIMEOUT', '5s');

// Seconds in a k6 duration ("5s", "500ms", "1m30s"); a bare number is ms, as for k6's timeout.
function durationSeconds(text) {
  if (/^\d+(\.\d+)?$/.test(text)) return parseFloat(text) / 1000;
  const units = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  let rest = text;
  const part = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;
  while (rest.length) {
    const match = part.exec(rest);
    if (!match) throw new Error(`TIMEOUT must be a k6 duration such as 5s or 500ms, got "${text}"`);
    total += parseFloat(match[1]) * units[match[2]];
    rest = rest.slice(match[0].length);
  }
  return total;
}
const TIMEOUT_S = durationSeconds(TIMEOUT);
const MAX_VUS = parseInt(env('MAX_VUS', String(Math.ceil(RATE * TIMEOUT_S * 1.5) + 10)), 10);
// k6 drops iterations while it initialises VUs mid-test (measured: 18 of 80
// in an 8 s blackhole at 10/s with 20 pre-allocated), so enough for a
// blackhole are made up front (about 0.5 MB each).
const PRE_VUS = Math.min(
  MAX_VUS,
  parseInt(env('VUS', String(Math.ceil(RATE * TIMEOUT_S) + 10)), 10),
);
const PARAMS = { headers: { 'Content-Type': env('CONTENT_TYPE', 'application/json') }, timeout: TIMEOUT };

function expectedStatuses(spec) {
  if (!spec) return http.expectedStatuses({ min: 200, max: 299 });
  return http.expectedStatuses(...spec.split(',').map((s) => parseInt(s.trim(), 10)));
}
http.setResponseCallback(expectedStatuses(env('EXPECT_STATUS', '')));

const thresholds = {};
const failureRate = env('THRESHOLD_FAILURE_RATE', '0.05');
if (failureRate) thresholds.http_req_failed = [`rate<${failureRate}`];
const latency = [];
if (env('THRESHOLD_P95_MS', '')) latency.push(`p(95)<${env('THRESHOLD_P95_MS', '')}`);
if (env('THRESHOLD_P99_MS', '')) latency.push(`p(99)<${env('THRESHOLD_P99_MS', '')}`);
if (latency.length) thresholds['http_req_duration{expected_response:true}'] = latency;

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(95)', 'p(99)'],
  scenarios: {
    inference: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: env('DURATION', '5m'),
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
    },
  },
  thresholds,
};

export default function () {
  exec.vu.metrics.metadata.sent_ms = String(Date.now());
  if (METHOD === 'GET') {
    http.get(URL, PARAMS);
  } else {
    http.request(METHOD, URL, PAYLOAD, PARAMS);
  }
  delete exec.vu.metrics.metadata.sent_ms;
}

function metricValues(data, name) {
  const metric = data.metrics[name];
  return metric ? metric.values : {};
}

function latencyOf(values) {
  return {
    p50: values['p(50)'] ?? null,
    p95: values['p(95)'] ?? null,
    p99: values['p(99)'] ?? null,
    avg: values.avg ?? null,
    max: values.max ?? null,
  };
}

export function handleSummary(data) {
  const duration = metricValues(data, 'http_req_duration{expected_response:true}');
  const all = metricValues(data, 'http_req_duration');
  const failed = metricValues(data, 'http_req_failed');
  const reqs = metricValues(data, 'http_reqs');
  const dropped = metricValues(data, 'dropped_iterations');
  const accepted = (reqs.count || 0) - (failed.passes || 0);
  const thresholdResults = {};
  for (const [name, metric] of Object.entries(data.metrics)) {
    if (metric.thresholds) {
      for (const [expr, result] of Object.entries(metric.thresholds)) {
        thresholdResults[`${name}: ${expr}`] = result.ok;
      }
    }
  }
  const summary = {
    schema: 'chaosray.k6.summary/v1',
    target: URL,
    rate: RATE,
    requests: reqs.count || 0,
    failed_rate: failed.rate === undefined ? null : failed.rate,
    failed: failed.passes || 0,
    // Iterations k6 never started for want of a VU: requests the service was
    // due to get and did not answer in time. Not in `requests` or `failed`.
    dropped_iterations: dropped.count || 0,
    max_vus: MAX_VUS,
    timeout_s: TIMEOUT_S,
    threshold_failure_rate: failureRate === '' ? null : parseFloat(failureRate),
    // Latency of accepted responses; null when no response was accepted (a
    // refused connection's 0 ms would read as a fast service).
    latency_ms: latencyOf(accepted > 0 ? (Object.keys(duration).length ? duration : all) : {}),
    thresholds: thresholdResults,
    state: data.state,
  };
  const out = {};
  const path = env('SUMMARY_PATH', 'summary.json');
  if (path) out[path] = JSON.stringify(summary, null, 2);
  if (env('SUMMARY_STDOUT', 'false') === 'true') {
    out.stdout = `\n=====CHAOSRAY-K6-SUMMARY-BEGIN=====\n${JSON.stringify(summary)}\n=====CHAOSRAY-K6-SUMMARY-END=====\n`;
  }
  return out;
}
