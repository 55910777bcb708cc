// Parse each DUIS file named on the command line with DCC's @smartdcc/duis-parser and print one
// JSON line per file: whether the parser accepts it as a DUIS response, and what it read.
'use strict'
const fs = require('node:fs')
const duis = require('@smartdcc/duis-parser')

const bodyKinds = [
  'DSPUpdateFirmwareWarning',
  'DSPUpdatePPMIDFirmwareWarning',
  'GBCSPayload',
  'NoBody',
]

for (const file of process.argv.slice(2)) {
  const out = { file }
  try {
    const parsed = duis.parseDuis('simplified', fs.readFileSync(file))
    out.isResponse = duis.isSimplifiedDuisOutputResponse(parsed)
    out.isDCCAlert = duis.isSimplifiedDuisResponseBody_DCCAlertMessage(parsed.body)
    out.isDeviceAlert = duis.isSimplifiedDuisResponseBody_DeviceAlertMessage(parsed.body)
    out.isResponseMessage = duis.isSimplifiedDuisResponseBody_ResponseMessage(parsed.body)
    out.responseMessageKinds = bodyKinds.filter((k) =>
      duis.isSimplifiedDuisResponseBody_ResponseMessage_X(k, parsed.body)
    )
    out.parsed = parsed
  } catch (e) {
    out.error = String(e)
  }
  console.log(JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
}
