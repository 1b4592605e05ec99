/*
 * common: result codes, API faults and small helpers shared by the GAAP simulator's modules.
 *
 * The simulator is an independent implementation of Tencent's side of the wire: it shares no code
 * with the gateway on purpose, so a bug in the gateway cannot be mirrored here.
 */
#ifndef SIM_COMMON_H
#define SIM_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MUST_CHECK __attribute__((warn_unused_result))

/* Result of every fallible function in the simulator. */
enum sim_err {
    SIM_OK = 0,
    SIM_FAULT,    /* the request is refused: a Tencent error code is in the struct sim_fault */
    SIM_ENOMEM,   /* an allocation failed */
    SIM_EIO,      /* a file operation failed */
    SIM_EINVALID, /* a local file (fixture, credentials, key) is malformed */
    SIM_ETOOBIG,  /* input exceeds a named maximum */
};

/* Largest request body accepted; more is refused with RequestSizeLimitExceeded. */
#define SIM_MAX_BODY_BYTES ((size_t)1 << 20)
/* Largest local file read (PEM files, fixture, credentials). */
#define SIM_MAX_FILE_BYTES ((size_t)4 << 20)
/* Length of a RequestId: a lowercase UUID v4. */
#define SIM_REQUEST_ID_LEN 36
#define SIM_FAULT_MSG_MAX 384

/* A Tencent API error: Code is from Tencent's list (a static string, or one the fixture holds),
 * Message says what to change. */
struct sim_fault {
    const char *code; /* NULL while no fault is set */
    char message[SIM_FAULT_MSG_MAX];
};

/* Sets the fault and returns SIM_FAULT, so callers can write `return sim_fault_set(...)`. */
enum sim_err sim_fault_set(struct sim_fault *f, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One received request header. name is lowercased; value is as MHD delivered it. Both owned by
 * the request that holds the array. */
struct sim_header {
    char *name;
    char *value;
};

/*
 * Returns the first header called name (lowercase) or NULL (borrowed). *count, when not NULL,
 * receives how many headers have that name, so callers can refuse ambiguous duplicates.
 */
const struct sim_header *sim_header_find(const struct sim_header *h, size_t n, const char *name,
                                         size_t *count);

/* Writes a fresh random UUID v4 (lowercase) and a NUL into out. Returns false if the RNG failed. */
bool sim_uuid(char out[SIM_REQUEST_ID_LEN + 1]) SIM_MUST_CHECK;

/* Lowercase hex of n bytes into out, which must hold 2n + 1 bytes. */
void sim_hex(const unsigned char *p, size_t n, char *out);

/*
 * Reads a whole file into a new NUL-terminated buffer (caller frees; wipe if it held a secret).
 * Returns SIM_ETOOBIG beyond max bytes, SIM_EIO if it cannot be read.
 */
enum sim_err sim_read_file(const char *path, size_t max, char **out, size_t *len) SIM_MUST_CHECK;

/*
 * Parses a strict unsigned decimal: digits only, no sign, no leading zeros (except "0"), at most
 * 18 digits. n is the length of s (s need not be NUL-terminated). Returns false otherwise.
 */
bool sim_parse_u64(const char *s, size_t n, uint64_t *out) SIM_MUST_CHECK;

/* Case-insensitive ASCII equality of two NUL-terminated strings. */
bool sim_ieq(const char *a, const char *b);

/* Wall clock, seconds since the epoch. */
int64_t sim_now(void);

/* Monotonic clock in nanoseconds. */
uint64_t sim_mono_ns(void);

#endif
