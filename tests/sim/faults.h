/*
 * faults: a fault plan for the simulator, per test, read once from the environment:
 *
 *   TCGW_SIM_FAULTS="Action:fault:count[,Action:fault:count...]"
 *
 * The next count requests of Action (any action: "*") end with the fault, in plan order:
 *   reset      the request is processed (applied) and recorded, then the connection is closed
 *              without an answer: the caller cannot know it was applied
 *   5xx        HTTP 503 with a text body, not applied
 *   throttle   RequestLimitExceeded, not applied
 *   malformed  HTTP 200 with a body that is not JSON, not applied
 * A plan that cannot be read stops the simulator at its first request (a test must not pass
 * without its faults).
 */
#ifndef SIM_FAULTS_H
#define SIM_FAULTS_H

#include <microhttpd.h>

enum sim_faults_kind {
    SIM_FAULTS_NONE = 0,
    SIM_FAULTS_RESET,
    SIM_FAULTS_5XX,
    SIM_FAULTS_THROTTLE,
    SIM_FAULTS_MALFORMED,
};

/* Takes the next planned fault for action (may be NULL), or SIM_FAULTS_NONE. Thread-safe. */
enum sim_faults_kind sim_faults_take(const char *action);

/* The fault's name as the plan and the record spell it; NULL for SIM_FAULTS_NONE. */
const char *sim_faults_name(enum sim_faults_kind kind);

/* Queues the answer of SIM_FAULTS_5XX or SIM_FAULTS_MALFORMED. */
enum MHD_Result sim_faults_reply(struct MHD_Connection *conn, enum sim_faults_kind kind);

#endif
