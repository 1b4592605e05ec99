/*
 * fixture: reads the simulator's fixture, the world GAAP answers from, out of one or more JSON
 * files laid over each other in order (tcgw-sim --fixture BASE --fixture MORE ...), and checks it.
 *
 * Each file is a JSON object; every key is optional in a file but the merged result must have
 * "Proxies" and "AccessRegionsByDestRegion":
 *   "Proxies": [ ProxyInfo ]       appended file after file; a ProxyId may appear only once
 *   "Regions": { RegionId: RegionDetail }
 *   "AccessRegionsByDestRegion": { DestRegion: [ AccessRegionDetial ] }
 *   "Accounts": { Name: AccountStates }
 *   "ProxyErrors": { ProxyId: {"Code": "...", "Message": "..."} }
 * The four objects are merged key by key; a key given by two files is refused, so a later file
 * can add to the world but never silently replace part of it.
 *
 * A ProxyInfo needs ProxyId, ProxyName, AccessRegion, RealServerRegion, Status (strings) and
 * Bandwidth, Concurrent, Scalarable, ProjectId, CreateTime (integers); ProxyType, if given, is an
 * integer. Any other ProxyInfo field is kept and shown by DescribeProxies.
 *
 * AccountStates: an object of booleans, each false when absent: "NotEnterprise",
 * "BalanceInsufficient", "ProtocolNotConfirmed", "Violation" (gaap.h says what each does). The
 * account "default" exists always (with every state false unless the fixture gives it).
 *
 * ProxyErrors: Code is an error code in Tencent's form (letters and digits, dotted parts), Message
 * a non-empty string; ProxyId must name a proxy of the fixture.
 */
#ifndef SIM_FIXTURE_H
#define SIM_FIXTURE_H

#include <stddef.h>

#include <jansson.h>

#include "common.h"

#define SIM_FIXTURE_MAX_FILES 16
#define SIM_FIXTURE_MAX_PROXIES 1000
#define SIM_FIXTURE_MAX_ACCOUNTS 1000
#define SIM_FIXTURE_DEFAULT_ACCOUNT "default"

/* The account states, in the order the simulator checks them. */
extern const char *const sim_fixture_account_states[];

/*
 * Reads paths[0..n) and merges them. *out is new (a JSON object with all five keys present,
 * "Accounts" holding "default"). On SIM_EINVALID a message naming the file and the problem is
 * written to errbuf.
 */
enum sim_err sim_fixture_load(const char *const *paths, size_t n, json_t **out, char *errbuf,
                              size_t errlen) SIM_MUST_CHECK;

#endif
