"""The hostile corpus as data: each case states its raw input and the answer it must get.

HTTP_CASES (category a), JSON_CASES (b) and ROUTING_CASES (c) are plain lists of dicts; the
test_*.py files in this folder run them against a live gateway and simulator. Every case carries a
call that the gateway would forward if it ignored the trick, so "nothing reached the simulator"
means the trick was refused, not that the call was invalid anyway.

Keys of a case:
  name         what it is
  raw          the exact bytes sent on a fresh connection (or pieces: a list sent in turn)
  shut_wr      half-close after sending (the client is gone: an answer is optional then)
  status       accepted HTTP statuses when the gateway answers in Tencent's format
  code         accepted Tencent error codes (a tuple)
  mhd          libmicrohttpd may answer this malformed head itself: any 4xx is accepted then
  silent_ok    the connection may be closed without an answer (the client already left)
  forward      (routing) the upstream host name the call may be forwarded to instead
"""
import hostile as H

GAAP = H.GAAP
BODY = H.VALID_BODY
CHUNKED_BODY = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)


def lines(**kw):
    return H.call_lines(**kw)


def req(header_lines, body=BODY, request_line=b"POST / HTTP/1.1"):
    return H.head(header_lines, request_line) + body


BAD = {"status": (400,), "code": ("InvalidRequest",)}
BAD_MHD = dict(BAD, mhd=True)
UNSUPPORTED_TE = {"status": (501,), "code": ("InvalidRequest",), "mhd": True}
# Over-long heads: the gateway may say 400 or 431 (Request Header Fields Too Large).
TOO_BIG = {"status": (400, 431), "code": ("InvalidRequest",), "mhd": True}
# A declared body over max_body_bytes: refused before it is read. README: every refusal is HTTP
# 200 with Tencent's body; 413 is accepted too, and 400 InvalidRequest for a body that ended short.
OVERSIZE = {"status": (200, 413, 400), "code": ("RequestSizeLimitExceeded", "InvalidRequest")}
# An absolute-form target wins over Host (RFC 9112 3.2.2): one naming a host that is not a Tencent
# endpoint is a routing refusal, HTTP 200 with Tencent's body like every other (README, Errors).
NOT_TENCENT = {"status": (200,), "code": ("InvalidRequest",)}


# ---------------------------------------------------------------------------------------------
# (a) HTTP smuggling and lax parsing, as raw bytes.

HTTP_CASES = [
    dict(BAD_MHD, name="two Content-Length headers, different values",
         raw=req(lines(length=None, extra=[b"Content-Length: 12", b"Content-Length: 5"]))),
    dict(BAD_MHD, name="two Content-Length headers, equal values",
         raw=req(lines(length=None, extra=[b"Content-Length: 12", b"Content-Length: 12"]))),
    dict(BAD_MHD, name="Content-Length as a list",
         raw=req(lines(length=None, extra=[b"Content-Length: 12, 12"]))),
    dict(BAD_MHD, name="Content-Length with a sign",
         raw=req(lines(length=None, extra=[b"Content-Length: +12"]))),
    dict(BAD_MHD, name="Content-Length and Transfer-Encoding: chunked",
         raw=req(lines(extra=[b"Transfer-Encoding: chunked"]), CHUNKED_BODY)),
    dict(BAD_MHD, name="Transfer-Encoding: chunked and a Content-Length that covers a second call",
         raw=req(lines(length=len(CHUNKED_BODY) + len(H.valid_call()),
                       extra=[b"Transfer-Encoding: chunked"]), CHUNKED_BODY + H.valid_call())),
    dict(BAD_MHD, name="whitespace between a header name and its colon",
         raw=req(lines(extra=[b"X-TC-Region : ap-guangzhou"]))),
    dict(BAD_MHD, name="whitespace before the colon of Transfer-Encoding",
         raw=req(lines(length=None, extra=[b"Transfer-Encoding : chunked"]), CHUNKED_BODY)),
    dict(BAD_MHD, name="obs-fold continuation line",
         raw=req(lines(extra=[b"X-TC-Region: ap-", b" guangzhou"]))),
    dict(BAD_MHD, name="obs-fold continuation of Host",
         raw=req([b"Host: gaap.tencentcloudapi.com", b"\tevil.com"] + lines()[1:])),
    dict(BAD_MHD, name="two Host headers, different",
         raw=req(lines(extra=[b"Host: evil.com"]))),
    dict(BAD_MHD, name="two Host headers, equal",
         raw=req(lines(extra=[b"Host: gaap.tencentcloudapi.com"]))),
    dict(BAD_MHD, name="HTTP/1.1 without a Host header",
         raw=req(lines()[1:], request_line=b"POST /gaap/ HTTP/1.1")),
    dict(BAD_MHD, name="NUL in the Host value",
         raw=req(lines(host=b"gaap.tencentcloudapi.com\0.evil"))),
    dict(BAD_MHD, name="NUL in the X-TC-Action value",
         raw=req(lines(action=b"DescribeProxies\0DeleteProxy"))),
    dict(BAD_MHD, name="bare CR in a header value",
         raw=req(lines(extra=[b"X-TC-TraceId: a\rX-Evil: 1"]))),
    dict(BAD_MHD, name="control byte 0x01 in a header value",
         raw=req(lines(extra=[b"X-TC-TraceId: abc\x01def"]))),
    dict(BAD_MHD, name="DEL (0x7f) in a header value",
         raw=req(lines(extra=[b"X-TC-TraceId: abc\x7f"]))),
    dict(BAD_MHD, name="escape sequence in a header value",
         raw=req(lines(extra=[b"X-TC-RequestClient: \x1b[31mred"]))),
    dict(BAD_MHD, name="NUL in a header name",
         raw=req(lines(extra=[b"X-TC-\0Region: ap-guangzhou"]))),
    dict(UNSUPPORTED_TE, name="Transfer-Encoding: gzip, chunked",
         raw=req(lines(length=None, extra=[b"Transfer-Encoding: gzip, chunked"]), CHUNKED_BODY)),
    # With the Content-Length the call also carries: refused for both (400), or the coding (501).
    dict(UNSUPPORTED_TE, status=(400, 501), name="Transfer-Encoding: identity",
         raw=req(lines(extra=[b"Transfer-Encoding: identity"]))),
    # chunked applied twice is malformed (RFC 9112 6.1) rather than unsupported: 400 or 501.
    dict(UNSUPPORTED_TE, status=(400, 501), name="Transfer-Encoding: chunked, twice",
         raw=req(lines(length=None, extra=[b"Transfer-Encoding: chunked",
                                           b"Transfer-Encoding: chunked"]), CHUNKED_BODY)),
    dict(BAD_MHD, name="chunk size that is not hexadecimal",
         raw=req(lines(length=None, extra=[b"Transfer-Encoding: chunked"]),
                 b"zz\r\n" + BODY + b"\r\n0\r\n\r\n")),
    dict(BAD_MHD, name="chunk size beyond 64 bits",
         raw=req(lines(length=None, extra=[b"Transfer-Encoding: chunked"]),
                 b"1" + b"0" * 20 + b"\r\n" + BODY + b"\r\n0\r\n\r\n")),
    dict(NOT_TENCENT, name="absolute URI to another host, Host names GAAP",
         raw=req(lines(), request_line=b"POST http://evil.com/ HTTP/1.1")),
    dict(NOT_TENCENT, name="absolute URI to another host with a GAAP path",
         raw=req(lines(), request_line=b"POST http://evil.com/gaap/ HTTP/1.1")),
    dict(TOO_BIG, name="a 64 KiB header line",
         raw=req(lines(extra=[b"X-Pad: " + b"a" * 65536]))),
    dict(TOO_BIG, name="2,000 headers",
         raw=req(lines(extra=[b"X-H%d: v" % i for i in range(2000)]))),
    dict(TOO_BIG, name="a 64 KiB request target",
         raw=req(lines(), request_line=b"POST /" + b"a" * 65536 + b" HTTP/1.1")),
    dict(OVERSIZE, name="10 MB Content-Length with a short body (refused before reading it)",
         raw=req(lines(length=10 * 1024 * 1024))),
    dict(OVERSIZE, name="10 MB Content-Length with a short body, then close",
         raw=req(lines(length=10 * 1024 * 1024)), shut_wr=True, silent_ok=True),
    dict(BAD, name="Content-Length 100 with a 12-byte body, then close",
         raw=req(lines(length=100)), shut_wr=True, silent_ok=True),
]

# ---------------------------------------------------------------------------------------------
# (b) JSON bombs in the body of an otherwise valid DescribeProxies call.

N = 100_000


MODIFY = b'{"ProxyId": "link-4ftf12sb", "Bandwidth": 10, '  # a valid start, to be completed


def base62(i):
    digits = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = b""
    while True:
        i, r = divmod(i, 62)
        out = digits[r:r + 1] + out
        if i == 0:
            return out


def deep_objects(depth):
    return b'{"Limit": 1, "X": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


JSON_CASES = [
    dict(name="100k '[' (unclosed)", body=b'{"Filters": ' + b"[" * N,
         code=("InvalidRequest",)),
    dict(name="100k nested lists, well formed", body=b'{"Filters": ' + b"[" * N + b"]" * N + b"}",
         code=("InvalidRequest",)),
    dict(name="100k nested objects, well formed", body=deep_objects(N), code=("InvalidRequest",)),
    dict(name="2,000 nested lists (under the parser's depth limit)",
         body=b'{"Filters": ' + b"[" * 2000 + b"]" * 2000 + b"}", code=("InvalidParameter",)),
    dict(name="a 900 KB string in a length-limited parameter",
         body=MODIFY + b'"ClientToken": "' + b"a" * 900_000 + b'"}',
         action="ModifyProxyConfiguration", code=("InvalidParameterValue",)),
    dict(name="a 900 KB key", body=b'{"' + b"k" * 900_000 + b'": 1}', code=("UnknownParameter",)),
    dict(name="a 2 MB string (over max_body_bytes)", body=b'{"X": "' + b"a" * 2_000_000 + b'"}',
         code=("RequestSizeLimitExceeded",)),
    dict(name="a 900 KB string of escapes in an ASCII-only parameter",
         body=MODIFY + b'"ClientToken": "' + b"\\u00e9" * 150_000 + b'"}',
         action="ModifyProxyConfiguration", code=("InvalidParameterValue",)),
    dict(name="100k distinct keys",
         body=b"{" + b",".join(b'"%s":0' % base62(i) for i in range(N)) + b"}",
         code=("UnknownParameter",)),
    dict(name="100k copies of one key", body=b"{" + b",".join([b'"Limit":1'] * N) + b"}",
         code=("InvalidRequest",)),
    dict(name="duplicate keys", body=b'{"Limit": 1, "Limit": 100}', code=("InvalidRequest",)),
    dict(name="duplicate keys in a nested object",
         body=b'{"Filters": [{"Name": "ProjectId", "Name": "GroupId", "Values": ["0"]}]}',
         code=("InvalidRequest",)),
    dict(name="keys differing in case", body=b'{"Limit": 1, "limit": 2}',
         code=("UnknownParameter",)),
    dict(name="100k items in a list limited to 100",
         body=b'{"ProxyIds": [' + b",".join([b'"link-1"'] * N) + b"]}",
         code=("InvalidParameterValue",)),
    dict(name="invalid UTF-8 byte 0xff", body=b'{"ProxyIds": ["link-\xff"]}',
         code=("InvalidRequest",)),
    dict(name="overlong UTF-8 encoding of '/'", body=b'{"ProxyIds": ["link-\xc0\xaf"]}',
         code=("InvalidRequest",)),
    dict(name="UTF-8 encoded surrogate", body=b'{"ProxyIds": ["link-\xed\xa0\x80"]}',
         code=("InvalidRequest",)),
    dict(name="truncated UTF-8 sequence at the end of a string",
         body=b'{"ProxyIds": ["link-\xe2\x82"]}', code=("InvalidRequest",)),
    dict(name="lone surrogate escape", body=b'{"ProxyIds": ["link-\\ud800"]}',
         code=("InvalidRequest",)),
    dict(name="NUL escape in a key (C-string truncation)", body=b'{"Li\\u0000mit": 1}',
         code=("InvalidRequest",)),
    dict(name="NUL escape in a value", body=b'{"ProxyIds": ["link-1\\u0000evil"]}',
         code=("InvalidRequest",)),
    dict(name="raw NUL byte after the object", body=b'{"Limit": 1}\x00{"Limit": 100}',
         code=("InvalidRequest",)),
    dict(name="a second object after the first", body=b'{"Limit": 1} {"Limit": 100}',
         code=("InvalidRequest",)),
    dict(name="integer 2^63", body=b'{"Limit": 9223372036854775808}',
         code=("InvalidParameterValue",)),
    dict(name="integer -2^63 - 1", body=b'{"Offset": -9223372036854775809}',
         code=("InvalidParameterValue",)),
    dict(name="integer 2^64", body=b'{"Offset": 18446744073709551616}',
         code=("InvalidParameterValue",)),
    dict(name="a 100k-digit integer", body=b'{"Offset": ' + b"9" * N + b"}",
         code=("InvalidParameterValue",)),
    dict(name="real 1e400", body=b'{"Offset": 1e400}', code=("InvalidParameterValue",)),
    dict(name="top level: list", body=b"[]", code=("InvalidRequest",)),
    dict(name="top level: list of the parameters", body=b'[{"Limit": 1}]',
         code=("InvalidRequest",)),
    dict(name="top level: string", body=b'"Limit"', code=("InvalidRequest",)),
    dict(name="top level: number", body=b"1", code=("InvalidRequest",)),
    dict(name="top level: null", body=b"null", code=("InvalidRequest",)),
    dict(name="top level: true", body=b"true", code=("InvalidRequest",)),
    dict(name="byte order mark before the object", body=b'\xef\xbb\xbf{"Limit": 1}',
         code=("InvalidRequest",)),
]

# ---------------------------------------------------------------------------------------------
# (c) Routing and SSRF: Host values, request targets, X-TC-Region values, path tricks.
# "refuse": the codes accepted for a refusal; "forward": the only upstream name the call may be
# sent to instead (that name is mapped to the simulator; every other name leads to the catcher).

REGION_HOST = "gaap.ap-guangzhou.tencentcloudapi.com"
ODD_REGION_HOST = "gaap.xx-evil-1.tencentcloudapi.com"  # well formed, unknown: mapped to the sim
EXTRA_SIM_HOSTS = (ODD_REGION_HOST,)
REFUSED = ("InvalidRequest", "InvalidParameterValue")
GAAP_NAME = "gaap.tencentcloudapi.com"


def route(name, host=GAAP, target=b"/", extra=(), refuse=REFUSED, forward=None):
    return {"name": name, "raw": H.valid_call(host=host, target=target, extra=extra),
            "refuse": refuse, "forward": forward}


ROUTING_CASES = [
    route("Host evil.com", host=b"evil.com"),
    route("Host evil.com:443", host=b"evil.com:443"),
    route("Host tencentcloudapi.com.evil.com", host=b"tencentcloudapi.com.evil.com"),
    route("Host gaap.tencentcloudapi.com.evil.com", host=b"gaap.tencentcloudapi.com.evil.com"),
    route("Host gaap.tencentcloudapi.com@evil.com", host=b"gaap.tencentcloudapi.com@evil.com"),
    route("Host evil.com@gaap.tencentcloudapi.com", host=b"evil.com@gaap.tencentcloudapi.com"),
    route("Host gaap.tencentcloudapi.com:443@evil.com",
          host=b"gaap.tencentcloudapi.com:443@evil.com"),
    route("Host evil.com#gaap.tencentcloudapi.com", host=b"evil.com#gaap.tencentcloudapi.com"),
    route("Host evil.com/gaap.tencentcloudapi.com", host=b"evil.com/gaap.tencentcloudapi.com"),
    route("Host evil.com\\gaap.tencentcloudapi.com", host=b"evil.com\\gaap.tencentcloudapi.com"),
    route("Host gaap.tencentcloudapi.com with a trailing dot",
          host=b"gaap.tencentcloudapi.com.", forward=GAAP_NAME),
    route("Host gaap.evil.com.tencentcloudapi.com (a dotted region)",
          host=b"gaap.evil.com.tencentcloudapi.com"),
    route("Host gaap..tencentcloudapi.com", host=b"gaap..tencentcloudapi.com"),
    route("Host %2e-encoded", host=b"gaap.tencentcloudapi.com%2eevil.com"),
    route("Host 127.0.0.1", host=b"127.0.0.1"),
    route("Host 127.0.0.1:443", host=b"127.0.0.1:443"),
    route("Host 169.254.169.254 (metadata service)", host=b"169.254.169.254"),
    route("Host 2130706433 (decimal IPv4)", host=b"2130706433"),
    route("Host 0x7f000001 (hex IPv4)", host=b"0x7f000001"),
    route("Host [::1]", host=b"[::1]"),
    route("Host [::1]:443", host=b"[::1]:443"),
    route("Host [::ffff:127.0.0.1]", host=b"[::ffff:127.0.0.1]"),
    route("Host with a non-numeric port", host=b"gaap.tencentcloudapi.com:evil.com"),
    route("Host with another port (the port is not passed on)",
          host=b"gaap.tencentcloudapi.com:8443", forward=GAAP_NAME),
    route("Host in upper case", host=b"GAAP.TencentCloudAPI.com", forward=GAAP_NAME),
    route("Host of another service (no description loaded)", host=b"cvm.tencentcloudapi.com",
          refuse=REFUSED + ("NoSuchProduct",)),
    route("Host of a service named like a host", host=b"evil-com.tencentcloudapi.com",
          refuse=REFUSED + ("NoSuchProduct",)),
    route("Host of a well-formed unknown region", host=ODD_REGION_HOST.encode(),
          forward=ODD_REGION_HOST),
    route("Host of the regional endpoint", host=REGION_HOST.encode(), refuse=(),
          forward=REGION_HOST),
    # Request targets.
    route("absolute-form to evil.com", host=b"evil.com", target=b"http://evil.com/"),
    route("absolute-form https to evil.com:443", host=b"evil.com",
          target=b"https://evil.com:443/"),
    route("absolute-form with userinfo", target=b"http://gaap.tencentcloudapi.com@evil.com/"),
    route("absolute-form to an IP literal", target=b"http://127.0.0.1:1/"),
    route("absolute-form to [::1]", target=b"http://[::1]/"),
    route("absolute-form to gaap.tencentcloudapi.com.evil.com",
          target=b"http://gaap.tencentcloudapi.com.evil.com/"),
    route("absolute-form with another scheme", target=b"ftp://evil.com/"),
    route("absolute-form to GAAP, Host evil.com", host=b"evil.com",
          target=b"http://gaap.tencentcloudapi.com/", forward=GAAP_NAME),
    route("path /gaap/../", target=b"/gaap/../"),
    route("path /gaap/../cvm/", target=b"/gaap/../cvm/"),
    route("path //evil.com/", target=b"//evil.com/"),
    route("path /evil.com/", target=b"/evil.com/"),
    route("path /%2F%2Fevil.com/", target=b"/%2F%2Fevil.com/"),
    route("path /gaap%2F..%2F", target=b"/gaap%2F..%2F"),
    # libmicrohttpd decodes %2f in the path before the gateway sees it: /gaap/ then.
    route("path /gaap%2f", target=b"/gaap%2f", forward=GAAP_NAME),
    route("path /./gaap/", target=b"/./gaap/"),
    route("path /gaap/#fragment", target=b"/gaap/#x"),
    route("path \\evil.com", target=b"\\evil.com"),
    route("path *", target=b"*"),
    route("path /gaap/ with Host evil.com (routed by path)", host=b"evil.com",
          target=b"/gaap/", forward=GAAP_NAME),
    # X-TC-Region: passed on as a header, never part of the host name.
    route("X-TC-Region with a dot", extra=[b"X-TC-Region: ap-guangzhou.evil.com"]),
    route("X-TC-Region with a slash", extra=[b"X-TC-Region: ap-guangzhou/evil"]),
    route("X-TC-Region with '@'", extra=[b"X-TC-Region: ap-guangzhou@evil.com"]),
    route("X-TC-Region with %2e", extra=[b"X-TC-Region: ap-guangzhou%2eevil.com"]),
    route("X-TC-Region '..'", extra=[b"X-TC-Region: .."]),
    route("X-TC-Region '../../'", extra=[b"X-TC-Region: ../../"]),
    route("X-TC-Region with a colon and port", extra=[b"X-TC-Region: evil.com:443"]),
    route("X-TC-Region of 200 characters", extra=[b"X-TC-Region: " + b"a" * 200]),
]
