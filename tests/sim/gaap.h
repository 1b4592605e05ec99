/*
 * gaap: the simulated GAAP 2018-05-29 service: a proxy table and an access-region table loaded
 * from a fixture file, and the actions the gateway forwards (CreateCertificate keeps what it is
 * given in memory). Thread-safe: all state is
 * behind one mutex.
 *
 * Fixture (JSON object):
 *   "Proxies": [ {ProxyId, ProxyName, ProjectId, AccessRegion, RealServerRegion, Bandwidth,
 *                 Concurrent, Status, Scalarable, CreateTime, ...any other ProxyInfo field} ]
 *   "Regions": { RegionId: RegionDetail }         (optional: fills AccessRegionInfo and
 *                                                  RealServerRegionInfo in DescribeProxies)
 *   "AccessRegionsByDestRegion": { DestRegion: [ AccessRegionDetial ] }
 *
 * ModifyProxyConfiguration checks Bandwidth and Concurrent against the entry of
 * AccessRegionsByDestRegion[proxy.RealServerRegion] whose RegionId is proxy.AccessRegion: the same
 * lists DescribeAccessRegionsByDestRegion returns.
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

#define SIM_GAAP_VERSION "2018-05-29"
#define SIM_GAAP_MAX_TOKENS 4096
#define SIM_GAAP_MAX_PROXIES 1000
/* CreateCertificate: the longest CertificateContent or CertificateKey taken. */
#define SIM_GAAP_MAX_CERT_BYTES 65536
/* CreateCertificate aliases that make the simulator echo the key it received (tests only). */
#define SIM_GAAP_ECHO_ALIAS "tcgw-test-echo"
#define SIM_GAAP_ECHO_ERROR_ALIAS "tcgw-test-echo-error"

struct sim_gaap;

/*
 * Loads the fixture at path. *out is new (free with sim_gaap_free). On SIM_EINVALID/SIM_EIO a
 * message naming the problem is written to errbuf.
 */
enum sim_err sim_gaap_load(const char *path, struct sim_gaap **out, char *errbuf,
                           size_t errlen) SIM_MUST_CHECK;

/* Accepts NULL. */
void sim_gaap_free(struct sim_gaap *g);

/* Number of actions; action indexes are 0 .. count-1. */
size_t sim_gaap_action_count(void);

/* Index of the named action (case-sensitive, as Tencent's are), or -1 if unknown. */
int sim_gaap_action_index(const char *name);

/*
 * Runs action index on params (a JSON object, borrowed) at wall time now. On SIM_OK the response
 * fields (without RequestId) have been added to resp, an empty object owned by the caller. On
 * SIM_FAULT f holds the Tencent error. SIM_ENOMEM when out of memory.
 */
enum sim_err sim_gaap_call(struct sim_gaap *g, int action, const json_t *params, int64_t now,
                           json_t *resp, struct sim_fault *f) SIM_MUST_CHECK;

#endif
