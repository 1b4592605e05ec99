#!/usr/bin/env node
// Recomputes TC3-HMAC-SHA256 Authorization values with the official Tencent Cloud Node SDK's own
// signer (tencentcloud-sdk-nodejs-common, Sign.sign3), so tcgw's signatures can be compared with
// the reference implementation byte for byte.
//
// Input (stdin): a JSON array of requests, each
//   {"host": "gaap.tencentcloudapi.com", "path": "/", "method": "POST",
//    "content_type": "application/json", "body_b64": "<exact body bytes, base64>",
//    "timestamp": 1700000000, "service": "gaap",
//    "secret_id": "...", "secret_key": "..."}
// Output (stdout): a JSON array, same order, each {"authorization": "..."} or {"error": "..."}.
"use strict";

const path = require("path");

function loadSign() {
  const modulePath = path.join(__dirname, "node_modules", "tencentcloud-sdk-nodejs-common",
                               "tencentcloud", "common", "sign");
  return require(modulePath).default;
}

function readStdin() {
  return require("fs").readFileSync(0, "utf8");
}

function signOne(Sign, req) {
  const host = req.host;
  const reqPath = req.path || "/";
  return Sign.sign3({
    method: req.method || "POST",
    url: `https://${host}${reqPath}`,
    // A Buffer is hashed as it is: the exact bytes that went over the wire.
    payload: Buffer.from(req.body_b64 || "", "base64"),
    timestamp: Number(req.timestamp),
    service: req.service,
    secretId: req.secret_id,
    secretKey: req.secret_key,
    multipart: false,
    headers: { "Content-Type": req.content_type },
  });
}

function main() {
  const Sign = loadSign();
  const requests = JSON.parse(readStdin());
  const out = requests.map((req) => {
    try {
      return { authorization: signOne(Sign, req) };
    } catch (e) {
      return { error: String((e && e.stack) || e) };
    }
  });
  process.stdout.write(JSON.stringify(out));
}

main();
