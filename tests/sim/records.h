/*
 * records: the simulator's log of every request it received, one JSON object per line, appended
 * and written with a single write(2) per record before the answer is sent, so a test that has its
 * answer can read the record. Safe to call from several MHD threads.
 */
#ifndef SIM_RECORDS_H
#define SIM_RECORDS_H

#include <jansson.h>

#include "common.h"

struct sim_records;

/* Opens (creating, mode 0600) path for appending. *out is new; free with sim_records_close. */
enum sim_err sim_records_open(const char *path, struct sim_records **out) SIM_MUST_CHECK;

/* Appends record (borrowed) as one compact JSON line. */
enum sim_err sim_records_write(struct sim_records *r, const json_t *record) SIM_MUST_CHECK;

/* Closes the file and frees r. Accepts NULL. */
void sim_records_close(struct sim_records *r);

#endif
