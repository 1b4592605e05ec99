/*
 * record: what the pipeline's final stage writes for every call, refused or forwarded, exactly
 * once, from the call alone. Today the one line of the operational log; the audit record and
 * metrics join it here.
 */
#ifndef GW_RECORD_H
#define GW_RECORD_H

#include <stddef.h>

#include "core/call.h"

/* The longest line gw_record_format writes; a longer one is cut and still ends in '\n'. */
#define GW_RECORD_LINE_MAX 4096

/*
 * Formats the call's line, newline included, into out (GW_RECORD_LINE_MAX bytes); returns its
 * length. Every field is either checked by the request stage to a narrow alphabet (service,
 * action) or produced by the gateway itself, so no caller text can forge a line.
 */
size_t gw_record_format(const struct gw_call *call, char *out);

/*
 * Writes the call's line to fd with one write(2): lines of several threads never interleave (a
 * pipe keeps a write of at most PIPE_BUF bytes whole, a file opened for appending any write).
 */
void gw_record_log_line(const struct gw_call *call, int fd);

#endif
