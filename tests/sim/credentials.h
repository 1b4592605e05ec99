/*
 * credentials: the keys the simulator accepts, and what CAM knows of each: its account, and for a
 * sub-account the actions and proxies its policy allows.
 *
 * The --credentials file is a JSON object keyed by SecretId. Each value is either the SecretKey
 * (a root account's key, allowed everything, in the account "default") or an object:
 *   "SecretKey":   required, non-empty string
 *   "Account":     the fixture account whose states apply (default "default")
 *   "Actions":     a sub-account's allowed actions, e.g. ["DescribeProxies"]; absent means every
 *                  action (a root account); [] allows none
 *   "ProxyIds":    the proxies a sub-account may act on (resource-level permission); absent means
 *                  all
 *   "AuthFailure": a message: CAM refuses every call signed with this key with AuthFailure
 * A SecretId is non-empty, without '/'.
 */
#ifndef SIM_CREDENTIALS_H
#define SIM_CREDENTIALS_H

#include <stddef.h>

#include <jansson.h>

#include "common.h"

#define SIM_CREDENTIALS_MAX 1000

struct sim_credentials;

/* Who signed a call, as the GAAP service sees it. Every pointer is borrowed from the credentials
 * and lives as long as they do. */
struct sim_principal {
    const char *secret_id;
    const char *account;     /* a fixture account name */
    const json_t *proxy_ids; /* array of strings, or NULL: every proxy */
};

/* Reads path. *out is new (free with sim_credentials_free). On SIM_EINVALID errbuf says why. */
enum sim_err sim_credentials_load(const char *path, struct sim_credentials **out, char *errbuf,
                                  size_t errlen) SIM_MUST_CHECK;

/* Accepts NULL. */
void sim_credentials_free(struct sim_credentials *c);

/* {"SecretId": "SecretKey", ...} (borrowed), for the signature check. */
const json_t *sim_credentials_keys(const struct sim_credentials *c);

/*
 * The first account a credential names that accounts (a fixture "Accounts" object, borrowed)
 * lacks, or NULL when every one is there.
 */
const char *sim_credentials_unknown_account(const struct sim_credentials *c,
                                            const json_t *accounts);

/*
 * CAM's decision for a call to action signed with secret_id (already verified): SIM_FAULT with
 * AuthFailure when the key is refused outright, AuthFailure.UnauthorizedOperation when a
 * sub-account's Actions lack the action; SIM_OK with *who filled otherwise.
 */
enum sim_err sim_credentials_authorize(const struct sim_credentials *c, const char *secret_id,
                                       const char *action, struct sim_principal *who,
                                       struct sim_fault *f) SIM_MUST_CHECK;

#endif
