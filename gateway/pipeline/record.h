/*
 * record: what the pipeline's final stage writes for every call, refused or forwarded, exactly
 * once, from the call alone. Today the one line of the operational log; the audit record and
 * metrics join it here.
 */
#ifndef GW_RECORD_H
#define GW_RECORD_H

#include <stdio.h>

#include "core/call.h"

/*
 * Writes one line to out. Every field is either checked by the request stage to a narrow alphabet
 * (service, action) or produced by the gateway itself, so no caller text can forge a line.
 */
void gw_record_log_line(const struct gw_call *call, FILE *out);

#endif
