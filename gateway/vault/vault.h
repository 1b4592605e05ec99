/*
 * vault: the only module that holds credential key bytes.
 *
 * A master key file (32 random bytes, mode 0600) encrypts a credential store file with
 * XChaCha20-Poly1305. At start the gateway opens the store into sodium_malloc'ed memory (guard
 * pages, locked in RAM, out of core dumps, wiped when freed). The master key and every SecretKey
 * stay PROT_NONE except while the store is read or written, or a day's signing key is derived.
 * The signing keys derived for (date, service) are kept read-only for that day's signatures and
 * wiped once their date is two days past (at the next derivation). Nothing ever returns a key:
 * callers ask the vault to sign.
 */
#ifndef GW_VAULT_H
#define GW_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/errors.h"
#include "vault/tc3.h"

#define GW_VAULT_MASTER_KEY_LEN 32
#define GW_VAULT_MAX_NAME 64          /* entry names: [A-Za-z0-9._-], 1..64 characters */
#define GW_VAULT_MAX_SECRET_ID 128    /* printable ASCII, no spaces */
#define GW_VAULT_MAX_SECRET_KEY 128   /* the same rule as a SecretId */
#define GW_VAULT_MAX_ENTRIES 256      /* credentials */
#define GW_VAULT_MAX_CALLER_KEYS 1024 /* caller keys: one per caller at most */

struct gw_vault;

/*
 * What makes a store's master key, as its header says: a key file (32 random bytes), or a
 * passphrase stretched with Argon2id (crypto_pwhash, ALG_ARGON2ID13) with the salt and cost in
 * the header.
 */
enum gw_vault_key_source {
    GW_VAULT_KEY_FILE = 0,
    GW_VAULT_KEY_PASSPHRASE = 1,
};

/*
 * Where the master key comes from when a store is opened: whichever of the two the store's header
 * asks for must be given (the other may be too, and is then ignored). passphrase is borrowed, in
 * memory the caller wipes (sodium_malloc); it is never copied but for the derivation.
 */
struct gw_vault_master {
    const char *key_file;            /* a master key file, or NULL */
    const unsigned char *passphrase; /* or NULL */
    size_t passphrase_len;
};

#define GW_VAULT_MAX_PASSPHRASE 1024 /* bytes */

/* The Argon2id cost of a passphrase store: crypto_pwhash's opslimit and memlimit. */
struct gw_vault_kdf {
    uint64_t opslimit;
    uint64_t memlimit;
};

/*
 * Sets *kdf to a named cost: "interactive", "moderate" (the default: about a second and 256 MiB),
 * "sensitive", or "insecure-test-only" (crypto_pwhash's minimums: for tests, never for a real
 * store). GW_ERR_INVALID for another name.
 */
enum gw_err gw_vault_kdf_named(const char *name, struct gw_vault_kdf *kdf) GW_MUST_CHECK;

/*
 * Reads the header of the store at store_path: what makes its master key, and its generation
 * (0 for stores older than format 3). GW_ERR_NOT_FOUND when there is no store yet; the other
 * errors as gw_vault_open, msg naming the file.
 */
enum gw_err gw_vault_store_info(const char *store_path, enum gw_vault_key_source *source,
                                uint64_t *generation, char *msg, size_t msglen) GW_MUST_CHECK;

/* Flags of gw_vault_open_master. */
#define GW_VAULT_OPEN_UPDATE 1u /* take the writer lock, as gw_vault_open_for_update */
/*
 * Open a store older than the generation recorded beside it (a backup restored on purpose); the
 * next save writes a generation above both, so that older copies stay refused. With UPDATE only.
 */
#define GW_VAULT_OPEN_ACCEPT_ROLLBACK 2u

/*
 * gw_vault_open and gw_vault_open_for_update for either kind of master key. Also checks the
 * store's generation against "<store_path>.generation" (the highest generation this machine has
 * saved): an older store is refused (GW_ERR_CRYPTO) unless GW_VAULT_OPEN_ACCEPT_ROLLBACK. A
 * passphrase store must exist (a key-file store that does not is empty). Wrong key or passphrase:
 * GW_ERR_CRYPTO, msg says which; a store a newer tcgw wrote: GW_ERR_INVALID, msg says upgrade.
 */
enum gw_err gw_vault_open_master(const struct gw_vault_master *master, const char *store_path,
                                 unsigned flags, struct gw_vault **out, char *msg,
                                 size_t msglen) GW_MUST_CHECK;

/*
 * Creates a store protected by a passphrase at store_path, with no entries, generation 1, a fresh
 * salt and cost kdf. Refuses (GW_ERR_EXISTS) when a store exists already: rekey that instead.
 */
enum gw_err gw_vault_init_passphrase(const char *store_path, const unsigned char *passphrase,
                                     size_t passphrase_len, const struct gw_vault_kdf *kdf,
                                     char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * Changes the master key of a vault from gw_vault_open_master(GW_VAULT_OPEN_UPDATE): to the key
 * file to->key_file (which exists: gw_vault_keygen), or, when to->key_file is NULL, to
 * to->passphrase with a fresh salt and cost kdf. Nothing is written: gw_vault_save then replaces
 * the store atomically, every entry encrypted under the new key. Caller token hashes do not
 * change (their key is kept inside the store). On failure the vault keeps its old key.
 */
enum gw_err gw_vault_rekey(struct gw_vault *vault, const struct gw_vault_master *to,
                           const struct gw_vault_kdf *kdf, char *msg, size_t msglen) GW_MUST_CHECK;

/* What makes the vault's master key now, and the generation its store was read at. */
enum gw_vault_key_source gw_vault_source(const struct gw_vault *vault);
uint64_t gw_vault_generation(const struct gw_vault *vault);

/*
 * Writes a new random master key to path with mode 0600. Refuses (GW_ERR_EXISTS) to overwrite an
 * existing file. On failure, msg (size msglen) says why, naming the file.
 */
enum gw_err gw_vault_keygen(const char *path, char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * Opens the store at store_path with the master key at key_path. A missing store file yields an
 * empty vault (so the first `secrets put` can create it). The key file must be exactly 32 bytes.
 * Both files must be regular files, not symbolic links (GW_ERR_PERM), FIFOs or devices
 * (GW_ERR_INVALID, without waiting on them), owned by the effective user or root and not
 * accessible by group or others (GW_ERR_PERM). A wrong key or a tampered store gives
 * GW_ERR_CRYPTO. On failure *out is untouched and msg says what to fix, naming the file.
 * On success *out is new: free it with gw_vault_free.
 */
enum gw_err gw_vault_open(const char *key_path, const char *store_path, struct gw_vault **out,
                          char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * As gw_vault_open, for a read-modify-write of the store: first takes the store's writer lock
 * (flock on "<store_path>.lock", created with mode 0600), waiting while another writer holds it,
 * and keeps it until gw_vault_free. Without it, two writers that both read the old store would
 * each save their own change and the second would erase the first's. Hold the vault only for the
 * update: read input before opening it. gw_vault_save then accepts only store_path.
 */
enum gw_err gw_vault_open_for_update(const char *key_path, const char *store_path,
                                     struct gw_vault **out, char *msg, size_t msglen) GW_MUST_CHECK;

/* Wipes and frees everything. Accepts NULL. */
void gw_vault_free(struct gw_vault *vault);

/*
 * Adds or replaces credential name. secret_id and secret_key are (pointer, length), copied into
 * protected memory; the caller wipes its own copies. GW_ERR_INVALID if a field breaks the rules
 * above (msg says which, never echoing the key).
 */
enum gw_err gw_vault_put(struct gw_vault *vault, const char *name, const char *secret_id,
                         size_t secret_id_len, const char *secret_key, size_t secret_key_len,
                         char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * Encrypts the vault with a fresh nonce under the next generation (one above the store read, and
 * above any generation recorded beside it) and replaces store_path atomically (gw_file_replace: a
 * temporary file with a random name, fsync, rename, directory fsync; removed on failure). An
 * existing store keeps its owner and mode; a new one gets mode 0600. A vault from
 * gw_vault_open_for_update saves only to the store it locked (GW_ERR_INVALID otherwise).
 * Then records the new generation in "<store_path>.generation" (replaced atomically too): if that
 * fails (GW_ERR_IO), the store has been saved all the same and msg says so.
 */
enum gw_err gw_vault_save(struct gw_vault *vault, const char *store_path, char *msg,
                          size_t msglen) GW_MUST_CHECK;

/* True when name follows the rule for credential names above. */
bool gw_vault_name_valid(const char *name);

/* Number of credentials. */
size_t gw_vault_count(const struct gw_vault *vault);

/*
 * Describes credential i (0 <= i < count, in name order): copies its name and the last four
 * characters of its SecretId (plus NUL) into the given arrays.
 */
enum gw_err gw_vault_describe(const struct gw_vault *vault, size_t i,
                              char name[GW_VAULT_MAX_NAME + 1], char id_tail[5]) GW_MUST_CHECK;

/* True when a credential of that name exists. */
bool gw_vault_has(const struct gw_vault *vault, const char *name);

/*
 * Signs req with credential name and appends the Authorization value to out. The signing key
 * derived for (credential, date, service) is cached for requests dated today or tomorrow by the
 * system clock: then the call takes no lock and changes no memory protection. Other dates are
 * signed with a key derived for the call and wiped. Safe to call from several threads at once
 * (and alongside gw_vault_save); gw_vault_put and gw_vault_free must not run while other threads
 * use the vault. GW_ERR_NOT_FOUND if no such credential, GW_ERR_INVALID (as gw_tc3_string_to_sign)
 * for a malformed request, GW_ERR_NOMEM, GW_ERR_INTERNAL if key memory cannot be made readable;
 * out is unchanged on failure.
 */
enum gw_err gw_vault_sign(struct gw_vault *vault, const char *name,
                          const struct gw_tc3_request *req, struct gw_buf *out) GW_MUST_CHECK;

/* Signatures served from the derived-key cache (hits) and keys derived (misses) since open. */
void gw_vault_cache_stats(const struct gw_vault *vault, uint64_t *hits, uint64_t *misses);

/*
 * Kinds of entries. A credential signs calls to Tencent Cloud (gw_vault_sign). A caller key is a
 * SecretId/SecretKey pair the gateway issued to one of its callers, so that the caller's own SDK
 * can sign its calls to the gateway: only gw_vault_verify uses it. Names are unique per kind (a
 * caller key and a credential may share a name); gw_vault_count, gw_vault_describe and
 * gw_vault_has see credentials only.
 */
enum gw_vault_kind {
    GW_VAULT_CREDENTIAL = 0,
    GW_VAULT_CALLER_KEY = 1,
    GW_VAULT_SECRET_VALUE = 2, /* a value injected into call parameters (below) */
};

/* As gw_vault_put, for a caller key named after its caller. */
enum gw_err gw_vault_put_caller_key(struct gw_vault *vault, const char *caller,
                                    const char *secret_id, size_t secret_id_len,
                                    const char *secret_key, size_t secret_key_len, char *msg,
                                    size_t msglen) GW_MUST_CHECK;

/* Removes an entry (wiping its key memory). GW_ERR_NOT_FOUND when there is none. Not while other
 * threads use the vault. */
enum gw_err gw_vault_remove(struct gw_vault *vault, enum gw_vault_kind kind,
                            const char *name) GW_MUST_CHECK;

/* True when a caller key of that name exists. */
bool gw_vault_has_caller_key(const struct gw_vault *vault, const char *caller);

/*
 * Checks a TC3 signature made with caller key `caller`: derives (or takes from the cache, as
 * gw_vault_sign does) the signing key for date ("YYYY-MM-DD") and service, computes
 * hex(HMAC-SHA256(key, string_to_sign)) and compares it with signature in constant time.
 * secret_id must equal the key's SecretId (compared in constant time too). GW_OK when both match,
 * GW_ERR_CRYPTO when either does not (a signature that is not 64 characters included),
 * GW_ERR_NOT_FOUND when there is no such caller key, GW_ERR_INVALID for a malformed date or
 * service (or a string_to_sign longer than GW_TC3_MAX_TEXT), GW_ERR_INTERNAL as gw_vault_sign.
 * Only dates that are today or tomorrow by the clock use the cache, as for gw_vault_sign.
 * Thread-safe as gw_vault_sign.
 */
enum gw_err gw_vault_verify(struct gw_vault *vault, const char *caller, const char *secret_id,
                            const char *date, const char *service, const char *string_to_sign,
                            size_t string_to_sign_len,
                            const char signature[GW_TC3_HEX_LEN + 1]) GW_MUST_CHECK;

/*
 * Secret values: named byte strings (a TLS private key, a database password) that the gateway
 * injects into a call's parameters in place of a placeholder (gateway/inject/), so that the caller
 * never holds them. Each is 1 to GW_VAULT_MAX_VALUE bytes of UTF-8 without NUL (it travels in a
 * JSON string), kept in key memory that is no-access except while gw_vault_value_use runs. Names
 * follow the credential rule and are unique among values.
 */
#define GW_VAULT_MAX_VALUE 65536 /* bytes of one secret value */
#define GW_VAULT_MAX_VALUES 128  /* secret values in a store */

/*
 * Adds or replaces secret value name, copying value (len bytes) into key memory; the caller wipes
 * its own copy. GW_ERR_INVALID (msg says which rule, never echoing the value) for a bad name, an
 * empty or over-long value, a NUL or invalid UTF-8; GW_ERR_TOO_LARGE when the store is full.
 * Not while other threads use the vault.
 */
enum gw_err gw_vault_put_value(struct gw_vault *vault, const char *name, const unsigned char *value,
                               size_t len, char *msg, size_t msglen) GW_MUST_CHECK;

/* True when a secret value of that name exists. */
bool gw_vault_has_value(const struct gw_vault *vault, const char *name);

/* Number of secret values. */
size_t gw_vault_value_count(const struct gw_vault *vault);

/* Copies the name of value i (0 <= i < count, in name order) and sets its length in bytes. */
enum gw_err gw_vault_value_describe(const struct gw_vault *vault, size_t i,
                                    char name[GW_VAULT_MAX_NAME + 1], size_t *len) GW_MUST_CHECK;

/* The length of value name, or GW_ERR_NOT_FOUND. */
enum gw_err gw_vault_value_length(const struct gw_vault *vault, const char *name,
                                  size_t *len) GW_MUST_CHECK;

/* Receives a value while it is readable: borrowed for the duration of the call only. */
typedef enum gw_err (*gw_vault_value_fn)(void *arg, const unsigned char *value, size_t len);

/*
 * Makes value name readable, calls fn with it, and makes it no-access again: the value never
 * leaves the vault except through fn, which copies it where it must go (a body in key memory) and
 * keeps no pointer. Returns fn's result, GW_ERR_NOT_FOUND when there is no such value, or
 * GW_ERR_INTERNAL if the memory cannot be made readable. Thread-safe (one lock per value, held
 * while fn runs: keep fn short); not alongside gw_vault_put_value or gw_vault_remove.
 */
enum gw_err gw_vault_value_use(struct gw_vault *vault, const char *name, gw_vault_value_fn fn,
                               void *arg) GW_MUST_CHECK;

#define GW_VAULT_TOKEN_HASH_LEN 32

/*
 * The keyed hash a caller's bearer token is kept as: BLAKE2b-256 (crypto_generichash) keyed with a
 * subkey derived from the master key (crypto_kdf, its own context). Without the master key the
 * hashes in the callers file are useless to an attacker. Thread-safe; the subkey is derived once
 * at open and kept in key memory.
 */
enum gw_err gw_vault_token_hash(const struct gw_vault *vault, const unsigned char *token,
                                size_t token_len,
                                unsigned char out[GW_VAULT_TOKEN_HASH_LEN]) GW_MUST_CHECK;

/*
 * Temporary credentials and roles.
 *
 * A credential is one of three types. A static one is a SecretId and SecretKey (gw_vault_put). A
 * temporary one adds a session token and an expiry (gw_vault_put_temporary): its token is sent
 * with every call it signs, as the X-TC-Token header (not signed, as Tencent's SDKs send it), and
 * it signs nothing once it expires (within GW_VAULT_EXPIRY_MARGIN seconds of its expiry). A role
 * (gw_vault_put_role) holds no key: it names a source credential that may call sts:AssumeRole, a
 * RoleArn, a RoleSessionName, a region and a DurationSeconds. The gateway's STS refresher
 * (gateway/sts/) asks STS for the role's temporary keys and installs them with
 * gw_vault_role_install; signing with the role uses the keys installed last. In the store a
 * temporary credential is entry kind 3 and a role kind 4 (store.c); all three types share the
 * credential names.
 */
#define GW_VAULT_MAX_TOKEN 4096       /* characters of a session token (printable ASCII) */
#define GW_VAULT_MAX_ROLE_ARN 256     /* qcs::cam::uin/100000000001:roleName/name */
#define GW_VAULT_MAX_SESSION_NAME 128 /* RoleSessionName: [\w+=,.@-], 2..128 (STS's rule) */
#define GW_VAULT_MAX_REGION 32        /* ap-guangzhou */
#define GW_VAULT_EXPIRY_MARGIN 2      /* keys this close to their expiry sign nothing */
#define GW_VAULT_MIN_DURATION 10      /* DurationSeconds bounds accepted in a role definition */
#define GW_VAULT_MAX_DURATION 43200

enum gw_vault_cred_type {
    GW_VAULT_STATIC = 0,
    GW_VAULT_TEMPORARY = 1,
    GW_VAULT_ROLE = 2,
};

/*
 * Adds or replaces credential name as a temporary credential: gw_vault_put's rules for the
 * SecretId and SecretKey, a token of 1..GW_VAULT_MAX_TOKEN printable ASCII characters without
 * spaces, and expires (seconds since the epoch, > 0). An expiry already past is accepted (the
 * credential then signs nothing). Not while other threads use the vault.
 */
enum gw_err gw_vault_put_temporary(struct gw_vault *vault, const char *name, const char *secret_id,
                                   size_t secret_id_len, const char *secret_key,
                                   size_t secret_key_len, const char *token, size_t token_len,
                                   int64_t expires, char *msg, size_t msglen) GW_MUST_CHECK;

/* A role's definition (strings borrowed by the call, copied by the vault). */
struct gw_vault_role_def {
    const char *source;       /* the credential that calls AssumeRole; not a role */
    const char *role_arn;     /* printable ASCII, no spaces */
    const char *session_name; /* RoleSessionName */
    const char *region;       /* X-TC-Region of the AssumeRole call */
    unsigned duration;        /* DurationSeconds, GW_VAULT_MIN_DURATION..GW_VAULT_MAX_DURATION */
};

/* Adds or replaces credential name as a role. GW_ERR_INVALID with msg for a bad field. */
enum gw_err gw_vault_put_role(struct gw_vault *vault, const char *name,
                              const struct gw_vault_role_def *def, char *msg,
                              size_t msglen) GW_MUST_CHECK;

/* What `secrets list` shows of credential i (0 <= i < gw_vault_count). Nothing secret. */
struct gw_vault_info {
    char name[GW_VAULT_MAX_NAME + 1];
    enum gw_vault_cred_type type;
    char id_tail[5]; /* static, temporary; for a role, its current keys' (or "") */
    int64_t expires; /* temporary: its expiry; role: its current keys' (0: none yet) */
    char source[GW_VAULT_MAX_NAME + 1];               /* role only */
    char role_arn[GW_VAULT_MAX_ROLE_ARN + 1];         /* role only */
    char session_name[GW_VAULT_MAX_SESSION_NAME + 1]; /* role only */
    char region[GW_VAULT_MAX_REGION + 1];             /* role only */
    unsigned duration;                                /* role only */
};

enum gw_err gw_vault_info(const struct gw_vault *vault, size_t i,
                          struct gw_vault_info *out) GW_MUST_CHECK;

/*
 * As gw_vault_sign, and appends the session token of the keys that signed to token (nothing for
 * a static credential): the caller sends it as X-TC-Token. A role signs with the temporary keys
 * installed last, read with one acquire load (no lock). GW_ERR_EXPIRED when the temporary keys
 * are expired (or within GW_VAULT_EXPIRY_MARGIN of it) or a role has none yet: nothing is signed.
 * token may be NULL only for a static credential (GW_ERR_INVALID otherwise: a call signed with
 * temporary keys is useless without its token). auth and token are unchanged on failure.
 */
enum gw_err gw_vault_sign_token(struct gw_vault *vault, const char *name,
                                const struct gw_tc3_request *req, struct gw_buf *auth,
                                struct gw_buf *token) GW_MUST_CHECK;

/* ---- Roles: what the STS refresher uses (vault/role.c) ---- */

/* Number of roles, and the name and definition of role i (0 <= i < count, name order). */
size_t gw_vault_role_count(const struct gw_vault *vault);
enum gw_err gw_vault_role_get(const struct gw_vault *vault, size_t i,
                              struct gw_vault_info *out) GW_MUST_CHECK;

/*
 * When role i should next be refreshed (seconds since the epoch): now when it has no keys, at 2/3
 * of its current keys' lifetime otherwise, and after a failure GW_VAULT_RETRY_SECONDS later (but
 * never past the keys' expiry margin). Thread-safe.
 */
#define GW_VAULT_RETRY_SECONDS 5
int64_t gw_vault_role_due(const struct gw_vault *vault, size_t i);

/* The refresh point of keys issued at issued that expire at expires: 2/3 of the lifetime. */
int64_t gw_vault_refresh_point(int64_t issued, int64_t expires);

/*
 * Installs new temporary keys for role i (issued now, expiring at expires): new signatures use
 * them at once (one release store); the keys they replace are retired, and freed by
 * gw_vault_roles_reap once no signer can still hold them (role.c). Thread-safe alongside signers;
 * one refresher at a time. msg says what is wrong with a field.
 */
enum gw_err gw_vault_role_install(struct gw_vault *vault, size_t i, const char *secret_id,
                                  size_t secret_id_len, const char *secret_key,
                                  size_t secret_key_len, const char *token, size_t token_len,
                                  int64_t expires, char *msg, size_t msglen) GW_MUST_CHECK;

/* Records that refreshing role i failed (why: no secrets in it), for readiness and scheduling. */
void gw_vault_role_failed(struct gw_vault *vault, size_t i, const char *why);

/* Frees retired keys that no signer can hold any more. The refresher calls it on each turn. */
void gw_vault_roles_reap(struct gw_vault *vault);

/*
 * Readiness: true when every role has keys that are not expired and its last refresh succeeded.
 * Otherwise false, and why names the first role that is not (and its last error). Thread-safe.
 */
bool gw_vault_roles_ok(const struct gw_vault *vault, char *why, size_t whylen);

/*
 * After a reload: gives each role of to that is defined exactly as in from (same source, ARN,
 * session, region, duration) a copy of from's current keys, so that calls under the new
 * snapshot do not wait for STS. Thread-safe alongside signers of either vault and the refresher.
 */
void gw_vault_roles_adopt(struct gw_vault *to, const struct gw_vault *from);

/*
 * Locked memory. Key memory is locked in RAM (mlock) so that keys never reach swap; a process
 * whose RLIMIT_MEMLOCK is too low cannot lock it. By default that is logged once and the keys are
 * held anyway; with gw_vault_require_locked_memory(true) such memory is refused (opening a vault
 * fails). gw_vault_memory_lockable says whether a page can be locked now (for a start-up check).
 */
void gw_vault_require_locked_memory(bool required);
bool gw_vault_memory_lockable(void);

#endif
