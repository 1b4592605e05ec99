#!/usr/bin/env node
// Calls tcgw with the official Tencent Cloud Node SDK's GAAP client (tencentcloud-sdk-nodejs,
// gaap.v20180529.Client), unchanged but for its endpoint: the SDK signs every call with the
// credential it is given (a SecretId/SecretKey pair the gateway issued) as it would for Tencent.
//
// Input (stdin), JSON:
//   {"endpoint": "127.0.0.1:<port>/gaap", "credential": {"secretId": "...", "secretKey": "..."},
//    "region": "ap-guangzhou" (optional),
//    "calls": [{"method": "DescribeProxies", "params": {...}}]}
// Output (stdout), JSON: one entry per call, in order:
//   {"ok": true, "response": {...}} or {"ok": false, "error": {"code", "message", "requestId"}}
"use strict";

const fs = require("fs");
const path = require("path");

const SDK = path.join(__dirname, "node_modules", "tencentcloud-sdk-nodejs");
const GaapClient = require(SDK).gaap.v20180529.Client;

async function main() {
  const input = JSON.parse(fs.readFileSync(0, "utf8"));
  const client = new GaapClient({
    credential: input.credential,
    region: input.region || "",
    profile: { httpProfile: { endpoint: input.endpoint, protocol: "http://", reqTimeout: 10 } },
  });
  const results = [];
  for (const call of input.calls) {
    try {
      const response = await client[call.method](call.params || {});
      results.push({ ok: true, response });
    } catch (e) {
      results.push({
        ok: false,
        error: {
          code: e && e.code !== undefined ? e.code : null,
          message: e && e.message !== undefined ? String(e.message) : String(e),
          requestId: e && e.requestId !== undefined ? e.requestId : null,
        },
      });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((e) => {
  process.stderr.write(String((e && e.stack) || e) + "\n");
  process.exit(1);
});
