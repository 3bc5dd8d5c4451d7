// Sends the calls of a JSON plan (stdin) through @segment/analytics-node, unchanged, and
// prints what the server answered. Exits non-zero when any delivery failed.
//   {"host": "http://127.0.0.1:PORT", "writeKey": "wk_...",
//    "calls": [{"method": "track", "params": {"userId": "u", "event": "E", "timestamp": "..."}}]}
import { Analytics } from '@segment/analytics-node'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const plan = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const analytics = new Analytics({
  writeKey: plan.writeKey,
  host: plan.host,
  path: '/v1/batch',
  flushAt: 3, // several batches, not one
  flushInterval: 200,
  maxRetries: 2,
  httpRequestTimeout: 10000,
})

const statuses = []
const errors = []
analytics.on('http_response', (response) => statuses.push(response.status))
analytics.on('error', (error) => errors.push(String(error && (error.reason || error.message || error.code))))

for (const call of plan.calls) analytics[call.method](call.params)
await analytics.closeAndFlush({ timeout: 20000 })

console.log(JSON.stringify({ statuses, errors }))
process.exit(errors.length === 0 && statuses.length > 0 && statuses.every((s) => s === 200) ? 0 : 1)
