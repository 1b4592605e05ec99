#!/usr/bin/env node
// Calls tcgw with the official Tencent Cloud Node SDK's own client (CommonClient from
// tencentcloud-sdk-nodejs-common): the SDK builds, signs (with the caller's dummy credential,
// which tcgw ignores) and sends each call, and reads the answer or the error as it would from
// Tencent Cloud.
//
// Input (stdin), JSON:
//   {"port": <gateway port>, "mode": "host" | "forward-proxy" | "path" | "sdk-proxy",
//    "credential": {"secretId": "...", "secretKey": "..."},
//    "calls": [{"action": "DescribeProxies", "params": {...},
//               "endpoint": "gaap.tencentcloudapi.com", "version": "2018-05-29",
//               "region": "ap-guangzhou" (optional), "timeout": 10 (seconds, optional)}]}
//
// Modes (how the SDK reaches the gateway on 127.0.0.1:<port>):
//   host          httpProfile.protocol "http://" and an httpProfile.agent whose sockets go to the
//                 gateway: the SDK sends exactly the request it would send to Tencent
//                 (POST / with Host: gaap.tencentcloudapi.com), only in plain HTTP on loopback.
//   forward-proxy the same, but the agent behaves as a plain-HTTP forward-proxy agent does: the
//                 request target is absolute-form (POST http://gaap.tencentcloudapi.com/).
//   path          no agent: httpProfile.endpoint "127.0.0.1:<port>/<service>", so the SDK posts
//                 to http://127.0.0.1:<port>/<service>/ (the service comes from the path).
//   sdk-proxy     the SDK's built-in httpProfile.proxy option, which tunnels with CONNECT.
//
// Output (stdout), JSON: one entry per call, in order:
//   {"ok": true, "response": {...Response...}, "wire": {...}} or
//   {"ok": false, "error": {"name", "isSdkException", "code", "message", "requestId",
//                           "traceId", "httpCode"}, "wire": {...}}
// where wire describes what went on the socket: {"requestLine", "host"} (host/forward-proxy).
"use strict";

const fs = require("fs");
const http = require("http");
const net = require("net");
const path = require("path");

const SDK_COMMON = path.join(__dirname, "node_modules", "tencentcloud-sdk-nodejs-common");
const { CommonClient } = require(SDK_COMMON);
const TencentCloudSDKHttpException = require(
  path.join(SDK_COMMON, "tencentcloud", "common", "exception", "tencent_cloud_sdk_exception"),
).default;

// An http.Agent whose every connection goes to the gateway, whatever host the URL names.
// With absoluteForm, the request target becomes the full URL, as a forward proxy expects.
class GatewayAgent extends http.Agent {
  constructor(port, absoluteForm) {
    super({ keepAlive: false });
    this.gatewayPort = port;
    this.absoluteForm = absoluteForm;
    this.wire = [];
  }

  addRequest(req, options) {
    if (this.absoluteForm && req.path.startsWith("/")) {
      const defaultPort = options.port === undefined || Number(options.port) === 80;
      const authority = defaultPort ? options.host : `${options.host}:${options.port}`;
      req.path = `http://${authority}${req.path}`;
    }
    this.wire.push({ requestLine: `${req.method} ${req.path} HTTP/1.1`, host: req.getHeader("host") });
    return super.addRequest(req, options);
  }

  createConnection(options, callback) {
    return net.createConnection({ host: "127.0.0.1", port: this.gatewayPort }, callback);
  }
}

function makeClient(input, call, agent) {
  const endpoint = call.endpoint || "gaap.tencentcloudapi.com";
  const service = endpoint.split(".")[0];
  const httpProfile = { protocol: "http://", reqTimeout: call.timeout || 10 };
  let clientEndpoint = endpoint;
  switch (input.mode) {
    case "host":
    case "forward-proxy":
      httpProfile.agent = agent;
      break;
    case "path":
      clientEndpoint = `127.0.0.1:${input.port}/${service}`;
      break;
    case "sdk-proxy":
      httpProfile.proxy = `http://127.0.0.1:${input.port}`;
      break;
    default:
      throw new Error(`unknown mode ${input.mode}`);
  }
  return new CommonClient(clientEndpoint, call.version || "2018-05-29", {
    credential: input.credential,
    region: call.region || "",
    profile: { httpProfile },
  });
}

function describeError(e) {
  return {
    name: e && e.constructor ? e.constructor.name : typeof e,
    isSdkException: e instanceof TencentCloudSDKHttpException,
    code: e && e.code !== undefined ? e.code : null,
    message: e && e.message !== undefined ? String(e.message) : String(e),
    requestId: e && e.requestId !== undefined ? e.requestId : null,
    traceId: e && e.traceId !== undefined ? e.traceId : null,
    httpCode: e && e.httpCode !== undefined ? e.httpCode : null,
  };
}

async function main() {
  const input = JSON.parse(fs.readFileSync(0, "utf8"));
  const results = [];
  for (const call of input.calls) {
    const agent = new GatewayAgent(input.port, input.mode === "forward-proxy");
    const wireOf = () => (agent.wire.length ? agent.wire[agent.wire.length - 1] : null);
    try {
      const client = makeClient(input, call, agent);
      const response = await client.request(call.action, call.params || {});
      results.push({ ok: true, response, wire: wireOf() });
    } catch (e) {
      results.push({ ok: false, error: describeError(e), wire: wireOf() });
    } finally {
      agent.destroy();
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((e) => {
  process.stderr.write(String((e && e.stack) || e) + "\n");
  process.exit(1);
});
