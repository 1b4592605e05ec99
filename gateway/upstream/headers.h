/*
 * headers: the headers of a signed call as libcurl sends them, for the upstream module (not part
 * of its interface). The lines live in one buffer that grows to the largest set seen and is reused
 * call after call, linked as the curl_slist that CURLOPT_HTTPHEADER reads (curl only reads it),
 * so a call allocates nothing for its headers. The buffer may hold X-TC-Token: wipe it when the
 * call ends (libcurl's own copy of the request head, in its upload buffer, is out of reach).
 */
#ifndef GW_UPSTREAM_HEADERS_H
#define GW_UPSTREAM_HEADERS_H

#include <curl/curl.h>
#include <stddef.h>

#include "core/call.h"
#include "core/errors.h"

/* The most headers a call sends: see upstream_headers_build. */
#define UPSTREAM_MAX_HEADERS 12

/* Embedded in its owner, zeroed to start with. */
struct upstream_headers {
    struct curl_slist line[UPSTREAM_MAX_HEADERS];
    char *text;
    size_t text_cap;
    size_t text_len;
};

/* The call's headers into h. GW_ERR_INVALID for a value with CR or LF, GW_ERR_NOMEM. */
enum gw_err upstream_headers_build(struct upstream_headers *h,
                                   const struct gw_call *call) GW_MUST_CHECK;

/* The list for CURLOPT_HTTPHEADER, valid until the next build, wipe or free. */
struct curl_slist *upstream_headers_list(struct upstream_headers *h);

/* Wipes the lines (the buffer is kept for the next call). */
void upstream_headers_wipe(struct upstream_headers *h);

/* Wipes and frees the buffer; h may be built again. */
void upstream_headers_free(struct upstream_headers *h);

#endif
