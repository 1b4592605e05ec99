/*
 * framing: refuses HTTP framing that two parsers could read differently (request smuggling),
 * which libmicrohttpd 0.9.75 accepts: more than one Content-Length, Host or Transfer-Encoding,
 * Content-Length with Transfer-Encoding, any coding but one chunked (501), an HTTP/1.1 request
 * without Host, white space between a
 * header name and its colon, control characters in a header. libmicrohttpd 0.9.75 joins an
 * obs-fold continuation into the value and ends a value at a NUL before anyone can see either;
 * what it hands over then meets the same checks as any other value (see docs/security.md).
 */
#ifndef GW_FRAMING_H
#define GW_FRAMING_H

#include <microhttpd.h>

#include "core/call.h"

/*
 * Sets in->malformed (a static message) and in->malformed_status (400 or 501) when refused, and
 * in->has_body when the request announces a body. version is libmicrohttpd's.
 */
void gw_framing_check(struct MHD_Connection *c, const char *version, struct gw_call_inbound *in);

#endif
