/*
 * framing: refuses HTTP framing that two parsers could read differently (request smuggling),
 * which libmicrohttpd 0.9.75 accepts: more than one Content-Length, Host or Transfer-Encoding,
 * Content-Length with Transfer-Encoding, any coding but one chunked (501), an HTTP/1.1 request
 * without Host, white space between a
 * header name and its colon, control characters in a header, and any head whose size is not that
 * of its headers written plainly ("Name: value" and CRLF, the request line with single spaces).
 * That last rule is how the bytes libmicrohttpd 0.9.75 reads but never shows are caught: it joins
 * an obs-fold continuation to the header's name and ends a value at a NUL.
 */
#ifndef GW_FRAMING_H
#define GW_FRAMING_H

#include <microhttpd.h>

#include "core/call.h"

/*
 * Sets in->malformed (a static message) and in->malformed_status (400 or 501) when refused, and
 * in->has_body when the request announces a body. raw_target_len is the length of the target as
 * received (libmicrohttpd's URI log callback); method and version are libmicrohttpd's.
 */
void gw_framing_check(struct MHD_Connection *c, const char *method, size_t raw_target_len,
                      const char *version, struct gw_call_inbound *in);

#endif
