/* upstream_internal: what the upstream module's files share; not part of its interface. */
#ifndef GW_UPSTREAM_INTERNAL_H
#define GW_UPSTREAM_INTERNAL_H

#include <stddef.h>

#include "core/errors.h"
#include "upstream/upstream.h"

/*
 * Checks the options gw_upstream_start is given (see there). GW_OK, or GW_ERR_INVALID with a one
 * line message in msg that names the setting, the entry and the expected form.
 */
enum gw_err gw_upstream_check(const struct gw_upstream_options *opts, char *msg,
                              size_t msglen) GW_MUST_CHECK;

#endif
