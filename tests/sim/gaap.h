/*
 * gaap: the simulated GAAP 2018-05-29 service: a proxy table, an access-region table, accounts
 * with their states and stated proxy errors, from the fixture (fixture.h), and the actions the
 * gateway forwards (CreateCertificate keeps what it is given in memory). Thread-safe: all state
 * that changes is behind one mutex.
 *
 * ModifyProxyConfiguration checks Bandwidth and Concurrent against the entry of
 * AccessRegionsByDestRegion[proxy.RealServerRegion] whose RegionId is proxy.AccessRegion: the same
 * lists DescribeAccessRegionsByDestRegion returns.
 *
 * ModifyProxyConfiguration checks, the first failure answering (CAM's checks, AuthFailure and
 * AuthFailure.UnauthorizedOperation, come before, in credentials.h):
 *   parameters                              UnknownParameter, MissingParameter, InvalidParameter,
 *                                           InvalidParameterValue (a ProxyId that does not start
 *                                           with "link-" is InvalidParameter)
 *   account NotEnterprise                   AuthFailure.NotEnterpriseAuthorization
 *   account Violation                       ResourceUnavailable.AccountViolation
 *   account ProtocolNotConfirmed            FailedOperation.UserNotConfirmProtocol
 *   proxy not in the sub-account's ProxyIds UnauthorizedOperation
 *   ClientToken reused, other parameters    FailedOperation.DuplicatedRequest
 *   no such proxy                           ResourceNotFound
 *   proxy Status MOVING                     FailedOperation.Migration
 *   proxy Status ADJUSTING                  FailedOperation (a change is already under way)
 *   proxy Status other than RUNNING         ResourceUnavailable
 *   proxy ProxyType 103 (a partner's)       FailedOperation.NonStandardProxy
 *   proxy Scalarable 0                      FailedOperation.NotSupportScalar
 *   the fixture's ProxyErrors[ProxyId]      its Code and Message, as stated
 *   no offer for the proxy's regions        InternalError
 *   value not offered                       InvalidParameterValue
 *   account BalanceInsufficient and the
 *   change raises Bandwidth or Concurrent   FailedOperation.AccountBalanceInsufficient
 * The describes are reads: account states, ProxyIds and proxy states do not refuse them.
 *
 * ClientToken (idempotency): a token is remembered only when its request succeeded, together with
 * the canonical form of its parameters (proxy id whichever of ProxyId/InstanceId named it,
 * Bandwidth, Concurrent, BillingType as integers, so "2" and 2 are the same). A later request with
 * the same token and the same canonical parameters succeeds again without changing anything (with
 * a fresh RequestId); with different parameters it fails with FailedOperation.DuplicatedRequest.
 * The most recent SIM_GAAP_MAX_TOKENS tokens are remembered.
 */
#ifndef SIM_GAAP_H
#define SIM_GAAP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common.h"
#include "credentials.h"

#define SIM_GAAP_VERSION "2018-05-29"
#define SIM_GAAP_MAX_TOKENS 4096
#define SIM_GAAP_MAX_PROXIES 1000
/* CreateCertificate: the longest CertificateContent or CertificateKey taken. */
#define SIM_GAAP_MAX_CERT_BYTES 65536
/* CreateCertificate aliases that make the simulator echo the key it received (tests only). */
#define SIM_GAAP_ECHO_ALIAS "tcgw-test-echo"
#define SIM_GAAP_ECHO_ERROR_ALIAS "tcgw-test-echo-error"
/* ProxyInfo.ProxyType of a partner's (Microsoft cooperation) proxy; 100 is a standard one. */
#define SIM_GAAP_NONSTANDARD_TYPE 103

struct sim_gaap;

/* Builds the service from a checked fixture (sim_fixture_load; borrowed, copied). *out is new
 * (free with sim_gaap_free). */
enum sim_err sim_gaap_new(const json_t *fixture, struct sim_gaap **out) SIM_MUST_CHECK;

/* Accepts NULL. */
void sim_gaap_free(struct sim_gaap *g);

/* Number of actions; action indexes are 0 .. count-1. */
size_t sim_gaap_action_count(void);

/* Index of the named action (case-sensitive, as Tencent's are), or -1 if unknown. */
int sim_gaap_action_index(const char *name);

/*
 * Runs action index for who (borrowed) on params (a JSON object, borrowed) at wall time now. On
 * SIM_OK the response fields (without RequestId) have been added to resp, an empty object owned
 * by the caller. On SIM_FAULT f holds the Tencent error (its code may point into g, which must
 * outlive f). SIM_ENOMEM when out of memory.
 */
enum sim_err sim_gaap_call(struct sim_gaap *g, const struct sim_principal *who, int action,
                           const json_t *params, int64_t now, json_t *resp,
                           struct sim_fault *f) SIM_MUST_CHECK;

#endif
