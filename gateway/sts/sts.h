/*
 * sts: the refresher of roles' temporary keys (vault.h, "Temporary credentials and roles").
 *
 * One thread of its own, outside the workers, so it may block: once a second it takes the
 * current access snapshot and, for each role whose keys are due (none yet, 2/3 of their lifetime
 * gone, or a retry after a failure: gw_vault_role_due), calls STS AssumeRole
 * (https://sts.tencentcloudapi.com/, version 2018-08-13, the role's region, signed with the role's
 * source credential as any call is, X-TC-Token included when that credential is temporary) with a
 * blocking libcurl easy handle, and installs the keys STS answers (gw_vault_role_install). The
 * upstream settings apply (CA file, connect_to and resolve overrides, timeouts), so a test can
 * point the STS host at the simulator.
 *
 * A failure never fails a call by itself: the role keeps signing with its current keys until they
 * expire, the failure is logged (level=warning event=sts_refresh result=failed ...) and retried
 * every GW_VAULT_RETRY_SECONDS, and readiness (gw_sts_ready) says so. Once the keys have expired,
 * calls with the role are refused before they are sent (InternalError.CredentialExpired).
 */
#ifndef GW_STS_H
#define GW_STS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/errors.h"

#define GW_STS_HOST "sts.tencentcloudapi.com"
#define GW_STS_VERSION "2018-08-13"
#define GW_STS_MAX_ANSWER 65536 /* bytes of an AssumeRole answer */

struct gw_access;
struct gw_sts;

struct gw_sts_options {
    const char *ca_file;     /* NULL: the system's trust store */
    char *const *connect_to; /* CURLOPT_CONNECT_TO entries, NULL-terminated; may be NULL */
    char *const *resolve;    /* CURLOPT_RESOLVE entries, NULL-terminated; may be NULL */
    long connect_timeout_ms;
    long timeout_ms;
};

/*
 * Starts the refresher over access (borrowed: it must outlive the refresher). curl_global_init
 * must have run. Options' strings are borrowed too. *out is new (gw_sts_stop).
 */
enum gw_err gw_sts_start(struct gw_access *access, const struct gw_sts_options *opts,
                         struct gw_sts **out, char *msg, size_t msglen) GW_MUST_CHECK;

/* Looks at the roles now rather than at the next tick (after a reload). Accepts NULL. */
void gw_sts_wake(struct gw_sts *sts);

/*
 * Readiness of the roles of the current snapshot: gw_vault_roles_ok. Thread-safe; for the admin
 * listener's /readyz.
 */
bool gw_sts_ready(struct gw_sts *sts, char *why, size_t whylen);

/* Stops the thread (an AssumeRole under way finishes first, within the timeouts) and frees. */
void gw_sts_stop(struct gw_sts *sts);

#endif
