// An HTTP/2 upstream over TLS for the connection tests: answers every request with a GAAP
// success after DELAY_MS, allows at most 100 streams per connection (as libcurl asks for), and
// prints "port N" when listening and "session K" each time a connection opens.
// Usage: node h2_upstream.js CERT KEY DELAY_MS
"use strict";
const fs = require("fs");
const http2 = require("http2");

const [cert, key, delayMs] = process.argv.slice(2);
let sessions = 0;
const server = http2.createSecureServer({
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  settings: { maxConcurrentStreams: 100 },
});
server.on("session", () => {
  sessions += 1;
  process.stdout.write("session " + sessions + "\n");
});
server.on("stream", (stream) => {
  stream.on("error", () => {});
  stream.resume(); // the body is not needed
  stream.on("end", () => {
    setTimeout(() => {
      if (stream.destroyed) return;
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end('{"Response":{"RequestId":"h2-' + sessions + '"}}');
    }, Number(delayMs));
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write("port " + server.address().port + "\n");
});
process.on("SIGTERM", () => process.exit(0));
