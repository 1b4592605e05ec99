/*
 * log: the operational log's format. Every module writes typed key=value fields to stderr
 * ("level=info event=call request_id=... ms=1.250 detail=\"...\""); with log_format "json" the
 * gateway turns each such line into one JSON object at the edge, on a thread of its own that
 * reads stderr through a pipe, so no writer changes and no line is interleaved with another:
 *   {"time":"2026-01-02T03:04:05.678Z","level":"info","event":"call","request_id":"...","ms":1.25}
 * Values that are JSON numbers stay numbers; every other value is a string. A line that is not
 * key=value (a library's message) becomes {"time":...,"level":"error","event":"message",
 * "message":"..."}. Nothing is added but the time: no secret can appear that the line lacked.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/errors.h"

#define GW_LOG_LINE_MAX 16384 /* longer lines are cut */

/*
 * Appends the JSON object of one line (without its newline) and a newline to out. time_ms is
 * the Unix time in milliseconds. GW_ERR_NOMEM, GW_ERR_TOO_LARGE.
 */
enum gw_err gw_log_json_line(const char *line, size_t len, int64_t time_ms,
                             struct gw_buf *out) GW_MUST_CHECK;

/* From now on stderr's lines are written as JSON objects (see above). GW_ERR_IO, GW_ERR_INTERNAL.
 */
enum gw_err gw_log_start_json(void) GW_MUST_CHECK;

/* Writes what is pending and gives stderr back. Does nothing unless gw_log_start_json ran. */
void gw_log_stop(void);

#endif
