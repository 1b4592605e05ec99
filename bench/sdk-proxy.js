#!/usr/bin/env node
// The SDK proxy of the benchmark: what a team would write instead of tcgw with the official
// Tencent Cloud Node SDK. It takes the same unsigned API 3.0 call tcgw takes (POST, Host,
// X-TC-Action, X-TC-Version, JSON body), calls it with the SDK's own CommonClient
// (tencentcloud-sdk-nodejs-common, which signs it with TC3-HMAC-SHA256) over a keep-alive HTTPS
// agent, and answers {"Response": ...} as Tencent does. No validation beyond JSON parsing.
//
//   node bench/sdk-proxy.js --upstream-port N [--port 0] [--listen 127.0.0.1]
//
// Every upstream connection goes to 127.0.0.1:<upstream-port> while Host, SNI and the
// certificate check keep the real name (gaap.tencentcloudapi.com); the dev CA is trusted through
// NODE_EXTRA_CA_CERTS. Credentials come from TCGW_BENCH_SECRET_ID / TCGW_BENCH_SECRET_KEY (the
// benchmark passes Tencent's documented example values). Prints "listening <port>" once ready.
"use strict";

const http = require("http");
const https = require("https");
const path = require("path");

const SDK_DIR =
  process.env.TCGW_BENCH_SDK_DIR ||
  path.join(__dirname, "..", "tests", "node", "node_modules", "tencentcloud-sdk-nodejs-common");
const { CommonClient } = require(SDK_DIR);
const TencentCloudSDKHttpException = require(
  path.join(SDK_DIR, "tencentcloud", "common", "exception", "tencent_cloud_sdk_exception"),
).default;

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const LISTEN = arg("--listen", "127.0.0.1");
const PORT = Number(arg("--port", "0"));
const UPSTREAM_PORT = Number(arg("--upstream-port", "0"));
const SUFFIX = ".tencentcloudapi.com";
if (!UPSTREAM_PORT) {
  process.stderr.write("sdk-proxy: --upstream-port is required\n");
  process.exit(2);
}
for (const v of ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"]) {
  delete process.env[v]; // the SDK's fetch would otherwise tunnel through a proxy
}

// Connects every upstream socket to the local upstream; the URL's host stays the SNI name.
class UpstreamAgent extends https.Agent {
  createConnection(options, callback) {
    const servername = options.servername || options.host;
    return super.createConnection(
      { ...options, host: "127.0.0.1", port: UPSTREAM_PORT, servername },
      callback,
    );
  }
}
const agent = new UpstreamAgent({ keepAlive: true, maxFreeSockets: 4096, scheduling: "lifo" });

const credential = {
  secretId: process.env.TCGW_BENCH_SECRET_ID || "",
  secretKey: process.env.TCGW_BENCH_SECRET_KEY || "",
};
const clients = new Map(); // "<endpoint> <version> <region>" -> CommonClient

function client(endpoint, version, region) {
  const key = `${endpoint} ${version} ${region}`;
  let c = clients.get(key);
  if (!c) {
    c = new CommonClient(endpoint, version, {
      credential,
      region,
      profile: { httpProfile: { agent, reqTimeout: 30 } },
    });
    clients.set(key, c);
  }
  return c;
}

let seq = 0;
function errorBody(code, message) {
  seq += 1;
  return JSON.stringify({
    Response: { Error: { Code: code, Message: message }, RequestId: `sdk-proxy-${process.pid}-${seq}` },
  });
}

function send(res, status, body) {
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(body);
}

async function handle(req, res, raw) {
  if (req.method !== "POST") {
    return send(res, 200, errorBody("UnsupportedProtocol", "POST only"));
  }
  const host = String(req.headers.host || "").toLowerCase().replace(/:\d+$/, "");
  const action = req.headers["x-tc-action"];
  const version = req.headers["x-tc-version"];
  if (!host.endsWith(SUFFIX) || !action || !version) {
    return send(res, 200, errorBody("MissingParameter", "Host, X-TC-Action and X-TC-Version"));
  }
  let params;
  try {
    params = raw.length ? JSON.parse(raw.toString("utf8")) : {};
  } catch (e) {
    return send(res, 200, errorBody("InvalidRequest", "body is not JSON"));
  }
  const region = req.headers["x-tc-region"] || "";
  try {
    const response = await client(host, version, region).request(action, params);
    send(res, 200, JSON.stringify({ Response: response }));
  } catch (e) {
    if (e instanceof TencentCloudSDKHttpException && e.code) {
      send(res, 200, JSON.stringify({
        Response: { Error: { Code: e.code, Message: e.message }, RequestId: e.requestId },
      }));
    } else {
      send(res, 502, errorBody("InternalError.UpstreamFailure", String((e && e.message) || e)));
    }
  }
}

const server = http.createServer({ keepAliveTimeout: 120000, requestTimeout: 60000 }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    handle(req, res, Buffer.concat(chunks)).catch((e) => {
      send(res, 500, errorBody("InternalError", String(e)));
    });
  });
});
server.keepAliveTimeout = 120000;
server.headersTimeout = 125000;
server.listen(PORT, LISTEN, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  agent.destroy();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
