#include "http/framing.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* What the framing check counts over every header of a request. */
struct framing {
    size_t canonical_size; /* of the head, were every header "Name: value" + CRLF */
    unsigned content_length, host, transfer_encoding, authorization;
    bool zero_length; /* Content-Length: 0 */
    bool body;
    const char *encoding;
    const char *malformed;
    unsigned status;
};

static bool has_ctl(const char *s, size_t n, bool tab_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(tab_ok && c == '\t')) || c == 0x7f) {
            return true;
        }
    }
    return false;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    struct framing *f = cls;
    (void)kind;
    /* libmicrohttpd keeps a space before the colon in the name, and a NUL cuts the C string. */
    if (key_size == 0 || strcspn(key, " \t") != key_size || has_ctl(key, key_size, false)) {
        f->malformed = "A header name is empty or has white space or control characters; send "
                       "\"Name: value\" with nothing between the name and the colon.";
        return MHD_NO;
    }
    if (value == NULL || strlen(value) != value_size || has_ctl(value, value_size, true)) {
        f->malformed = "A header value has a NUL or another control character.";
        return MHD_NO;
    }
    f->canonical_size += key_size + 2 + value_size + 2;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->content_length++;
        f->zero_length = strcmp(value, "0") == 0;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        f->host++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
        f->authorization++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encoding++;
        f->encoding = value;
    }
    return MHD_YES;
}

void gw_framing_check(struct MHD_Connection *c, const char *method, size_t raw_target_len,
                      const char *version, struct gw_call_inbound *in)
{
    struct framing f = {.status = MHD_HTTP_BAD_REQUEST};
    f.canonical_size = strlen(method) + 1 + raw_target_len + 1 + strlen(version) + 2 + 2;
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_header, &f);
    const union MHD_ConnectionInfo *head =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (f.malformed != NULL) {
        /* said already */
    } else if (head == NULL || head->header_size != f.canonical_size) {
        /* Bytes libmicrohttpd read but does not show: an obs-fold's line break, what follows a
         * NUL in a value, bare CR or LF line ends, extra white space. */
        f.malformed = "The request head is not in the plain form: send each header as "
                      "\"Name: value\" (one space) on its own line ending in CRLF, with no "
                      "folded lines and no NUL.";
    } else if (f.content_length > 1) {
        f.malformed = "The request has more than one Content-Length header.";
    } else if (f.host > 1) {
        f.malformed = "The request has more than one Host header.";
    } else if (f.authorization > 1) {
        f.malformed = "The request has more than one Authorization header: send one identity.";
    } else if (f.host == 0 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0) {
        f.malformed = "An HTTP/1.1 request must have a Host header.";
    } else if (f.transfer_encoding > 0 && f.content_length > 0) {
        f.malformed = "The request has both Content-Length and Transfer-Encoding: send one.";
    } else if (f.transfer_encoding > 1 ||
               (f.transfer_encoding == 1 && strcasecmp(f.encoding, "chunked") != 0)) {
        f.malformed = "The only Transfer-Encoding accepted is one chunked.";
        f.status = MHD_HTTP_NOT_IMPLEMENTED;
    }
    f.body = f.content_length > 0 || f.transfer_encoding > 0;
    if (f.malformed != NULL) {
        in->malformed = f.malformed;
        in->malformed_status = f.status;
    }
    in->has_body = f.body && !(f.content_length == 1 && f.zero_length);
}
