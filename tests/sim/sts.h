/*
 * sts: the simulator's STS (sts.tencentcloudapi.com, version 2018-08-13), served on the same
 * port as gaap and chosen by the Host header. One action, AssumeRole: for a caller whose call is
 * signed with a known static credential (service "sts"), it issues a temporary SecretId,
 * SecretKey and Token that live DurationSeconds (SIM_STS_MIN_DURATION..43200, default 7200;
 * shorter than real STS allows, so tests can watch several refreshes). The signature check then
 * accepts a temporary SecretId only with its own token in X-TC-Token, until it expires:
 *   X-TC-Token absent                       AuthFailure.TokenFailure
 *   X-TC-Token not the one issued           AuthFailure.TokenFailure
 *   the temporary keys expired              AuthFailure.TokenFailure
 * Control (no authentication, not recorded): GET /_sim/sts/refuse makes AssumeRole answer
 * InternalError (STS down) until GET /_sim/sts/accept.
 */
#ifndef SIM_STS_H
#define SIM_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common.h"

#define SIM_STS_HOST_PREFIX "sts."
#define SIM_STS_VERSION "2018-08-13"
#define SIM_STS_SERVICE "sts"
#define SIM_STS_MIN_DURATION 5
#define SIM_STS_MAX_DURATION 43200
#define SIM_STS_MAX_ISSUED 4096 /* keys remembered; expired ones are dropped first */
#define SIM_STS_KEY_MAX 64

struct sim_sts;

enum sim_err sim_sts_new(struct sim_sts **out) SIM_MUST_CHECK;
void sim_sts_free(struct sim_sts *s);

/* True when url is a control path (handled: *body is "ok"). */
bool sim_sts_control(struct sim_sts *s, const char *method, const char *url);

/* True when the Host header names the STS endpoint. */
bool sim_sts_host(const char *host);

/* The action's answer into resp (already authenticated), or a fault. */
enum sim_err sim_sts_call(struct sim_sts *s, const char *action, const json_t *params, int64_t now,
                          json_t *resp, struct sim_fault *f) SIM_MUST_CHECK;

/*
 * For the signature check: when secret_id is a temporary one this STS issued, *issued is true
 * and key (key_cap bytes) receives its SecretKey if token matches and it has not expired
 * (SIM_OK), else SIM_FAULT with AuthFailure.TokenFailure. *issued false: not ours (SIM_OK).
 */
enum sim_err sim_sts_lookup(struct sim_sts *s, const char *secret_id, const char *token,
                            int64_t now, char *key, size_t key_cap, bool *issued,
                            struct sim_fault *f) SIM_MUST_CHECK;

#endif
