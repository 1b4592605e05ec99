/*
 * vault: master key file, encrypted credential store, and signing with protected keys.
 *
 * Store file (all integers big-endian):
 *   "TCGWSTORE1"            10 bytes, magic and format version; the AEAD additional data
 *   nonce                   24 bytes, fresh random per save
 *   ciphertext              XChaCha20-Poly1305 (IETF) of the plaintext, then its 16-byte tag
 * Plaintext:
 *   count                   u32
 *   count times:            u16 name_len, name, u16 id_len, SecretId, u16 key_len, SecretKey
 *                           (entries in strictly ascending name order)
 * The plaintext is only ever built and parsed in sodium_malloc memory, never through stdio.
 */
#include "vault/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_MAGIC "TCGWSTORE1"
#define STORE_MAGIC_LEN 10
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define HEADER_LEN (STORE_MAGIC_LEN + NONCE_LEN)
#define ENTRY_MAX (2 + GW_VAULT_MAX_NAME + 2 + GW_VAULT_MAX_SECRET_ID + 2 + GW_VAULT_MAX_SECRET_KEY)
#define PLAIN_MIN 4
#define PLAIN_MAX (PLAIN_MIN + GW_VAULT_MAX_ENTRIES * ENTRY_MAX)
#define STORE_MIN (HEADER_LEN + PLAIN_MIN + TAG_LEN)
#define STORE_MAX (HEADER_LEN + PLAIN_MAX + TAG_LEN)

#define CACHE_SLOTS 4

/* A derived signing key for one (date, service). last_used == 0 marks an empty slot. */

/*
 * Key memory goes back to no-access after every use. If the kernel refuses, keys would stay
 * readable: that is not a state to run on, so the process stops.
 */
static void lock_away(void *p)
{
    if (sodium_mprotect_noaccess(p) != 0) {
        fputs("tcgw: cannot make key memory inaccessible again; stopping\n", stderr);
        abort();
    }
}

/* Makes key memory readable; stops the process if it cannot (the read would fault anyway). */
static void open_for_reading(void *p)
{
    if (sodium_mprotect_readonly(p) != 0) {
        fputs("tcgw: cannot make key memory readable; stopping\n", stderr);
        abort();
    }
}

struct cache_slot {
    uint64_t last_used;
    char date[GW_TC3_DATE_LEN + 1];
    char service[GW_TC3_MAX_SERVICE + 1];
    unsigned char key[GW_TC3_KEY_LEN];
};

/* Everything secret about one credential: one sodium_malloc region, PROT_NONE at rest. */
struct secret {
    size_t id_len;
    size_t key_len;
    uint64_t tick; /* LRU clock for the cache */
    char id[GW_VAULT_MAX_SECRET_ID + 1];
    unsigned char key[GW_VAULT_MAX_SECRET_KEY];
    struct cache_slot cache[CACHE_SLOTS];
};

struct cred {
    char name[GW_VAULT_MAX_NAME + 1];
    char id_tail[5]; /* shown by `secrets list`; not secret */
    /*
     * Why a mutex: the protection of sec is one state shared by all threads, so unprotecting,
     * using and re-protecting it must not interleave. The section is a few microseconds (two
     * mprotect calls and one to four HMACs) and the lock is per credential, not global.
     */
    pthread_mutex_t lock;
    struct secret *sec;
};

struct gw_vault {
    unsigned char *master; /* sodium_malloc, GW_VAULT_MASTER_KEY_LEN bytes, PROT_NONE at rest */
    struct cred **creds;   /* count entries, ascending by name; pointers because of the mutexes */
    size_t count;
    _Atomic uint64_t hits;
    _Atomic uint64_t misses;
    bool resident; /* credential memory stays accessible between uses (gw_vault_keep_resident) */
};

/* Makes a credential's memory readable and writable, unless it is resident already. */
static enum gw_err cred_open(const struct gw_vault *vault, struct cred *c)
{
    if (vault->resident || sodium_mprotect_readwrite(c->sec) == 0) {
        return GW_OK;
    }
    return GW_ERR_INTERNAL;
}

/* Puts a credential's memory back to no-access, unless the vault keeps it resident. */
static void cred_close(const struct gw_vault *vault, struct cred *c)
{
    if (!vault->resident) {
        lock_away(c->sec);
    }
}

static void say(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *msg, size_t msglen, const char *fmt, ...)
{
    if (msg == NULL || msglen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

static enum gw_err lib_init(char *msg, size_t msglen)
{
    if (sodium_init() < 0) {
        say(msg, msglen, "cannot initialise libsodium");
        return GW_ERR_INTERNAL;
    }
    return GW_OK;
}

/* ---- Files ---- */

static enum gw_err write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return GW_ERR_IO;
        }
        p += (size_t)w;
        n -= (size_t)w;
    }
    return GW_OK;
}

/* Reads up to max bytes; *got tells how many. Reading max bytes means there may be more. */
static enum gw_err read_upto(int fd, unsigned char *p, size_t max, size_t *got)
{
    size_t n = 0;
    while (n < max) {
        ssize_t r = read(fd, p + n, max - n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return GW_ERR_IO;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    *got = n;
    return GW_OK;
}

/* fsyncs the directory holding path, so a create or rename in it survives a crash. */
static enum gw_err sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : (size_t)(slash - path);
    if (slash == NULL) {
        memcpy(dir, ".", 2);
    } else if (n == 0) {
        memcpy(dir, "/", 2);
    } else {
        if (n >= sizeof dir) {
            return GW_ERR_TOO_LARGE;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return GW_ERR_IO;
    }
    /* Some file systems cannot sync a directory (EINVAL); the rename itself has been done. */
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    return (rc == 0 || saved == EINVAL) ? GW_OK : GW_ERR_IO;
}

/* ---- Rules for names and values ---- */

bool gw_vault_name_valid(const char *name)
{
    if (name == NULL) {
        return false;
    }
    size_t n = 0;
    for (const char *p = name; *p != '\0'; p++, n++) {
        int c = (unsigned char)*p;
        if (n >= GW_VAULT_MAX_NAME ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return n > 0;
}

/* Checks a SecretId or SecretKey without ever echoing it. */
static enum gw_err check_value(const char *what, const char *v, size_t len, size_t max, char *msg,
                               size_t msglen)
{
    if (v == NULL || len == 0) {
        say(msg, msglen, "%s is empty", what);
        return GW_ERR_INVALID;
    }
    if (len > max) {
        say(msg, msglen, "%s is longer than %zu characters", what, max);
        return GW_ERR_INVALID;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\r') {
            say(msg, msglen, "%s contains a carriage return (Windows line ending?): remove it",
                what);
            return GW_ERR_INVALID;
        }
        if (c == ' ' || c == '\t') {
            say(msg, msglen, "%s contains whitespace: it must be one word", what);
            return GW_ERR_INVALID;
        }
        if (c < 0x21 || c > 0x7e) {
            say(msg, msglen, "%s contains a character that is not printable ASCII", what);
            return GW_ERR_INVALID;
        }
    }
    return GW_OK;
}

static void make_tail(const char *id, size_t id_len, char tail[5])
{
    size_t n = id_len < 4 ? id_len : 4;
    memcpy(tail, id + id_len - n, n);
    tail[n] = '\0';
}

/* ---- Credentials in memory ---- */

/* Index of name, or of where it would go (*found says which). */
static size_t find_pos(const struct gw_vault *vault, const char *name, bool *found)
{
    size_t lo = 0, hi = vault->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(vault->creds[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

static struct cred *find(const struct gw_vault *vault, const char *name)
{
    bool found;
    size_t i = find_pos(vault, name, &found);
    return found ? vault->creds[i] : NULL;
}

static void cred_free(struct cred *c)
{
    if (c == NULL) {
        return;
    }
    sodium_free(c->sec); /* makes the region writable, zeroes it, unmaps it */
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Fills a writable secret with the given values and an empty cache. */
static void secret_fill(struct secret *s, const char *id, size_t id_len, const char *key,
                        size_t key_len)
{
    sodium_memzero(s, sizeof *s);
    memcpy(s->id, id, id_len);
    s->id[id_len] = '\0';
    s->id_len = id_len;
    memcpy(s->key, key, key_len);
    s->key_len = key_len;
}

enum gw_err gw_vault_put(struct gw_vault *vault, const char *name, const char *secret_id,
                         size_t secret_id_len, const char *secret_key, size_t secret_key_len,
                         char *msg, size_t msglen)
{
    enum gw_err err;
    struct cred *c = NULL;
    bool found;

    if (vault == NULL) {
        say(msg, msglen, "no vault");
        return GW_ERR_INVALID;
    }
    if (!gw_vault_name_valid(name)) {
        say(msg, msglen, "credential name must be 1 to %d characters from A-Z a-z 0-9 . _ -",
            GW_VAULT_MAX_NAME);
        return GW_ERR_INVALID;
    }
    if ((err = check_value("SecretId", secret_id, secret_id_len, GW_VAULT_MAX_SECRET_ID, msg,
                           msglen)) != GW_OK ||
        (err = check_value("SecretKey", secret_key, secret_key_len, GW_VAULT_MAX_SECRET_KEY, msg,
                           msglen)) != GW_OK) {
        return err;
    }

    size_t pos = find_pos(vault, name, &found);
    if (found) {
        /* Replacing a key also drops the signing keys derived from the old one. */
        c = vault->creds[pos];
        pthread_mutex_lock(&c->lock);
        if (cred_open(vault, c) != GW_OK) {
            pthread_mutex_unlock(&c->lock);
            say(msg, msglen, "cannot unprotect key memory");
            return GW_ERR_INTERNAL;
        }
        secret_fill(c->sec, secret_id, secret_id_len, secret_key, secret_key_len);
        cred_close(vault, c);
        make_tail(secret_id, secret_id_len, c->id_tail);
        pthread_mutex_unlock(&c->lock);
        return GW_OK;
    }

    if (vault->count >= GW_VAULT_MAX_ENTRIES) {
        say(msg, msglen, "a credential store holds at most %d credentials", GW_VAULT_MAX_ENTRIES);
        return GW_ERR_TOO_LARGE;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        goto nomem;
    }
    c->sec = sodium_malloc(sizeof *c->sec);
    if (c->sec == NULL) {
        free(c);
        goto nomem;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        sodium_free(c->sec);
        free(c);
        goto nomem;
    }
    struct cred **grown = realloc(vault->creds, (vault->count + 1) * sizeof *grown);
    if (grown == NULL) {
        cred_free(c);
        goto nomem;
    }
    vault->creds = grown;
    memcpy(c->name, name, strlen(name) + 1);
    make_tail(secret_id, secret_id_len, c->id_tail);
    secret_fill(c->sec, secret_id, secret_id_len, secret_key, secret_key_len);
    cred_close(vault, c);
    memmove(&vault->creds[pos + 1], &vault->creds[pos], (vault->count - pos) * sizeof *grown);
    vault->creds[pos] = c;
    vault->count++;
    return GW_OK;
nomem:
    say(msg, msglen, "out of memory");
    return GW_ERR_NOMEM;
}

size_t gw_vault_count(const struct gw_vault *vault)
{
    return vault == NULL ? 0 : vault->count;
}

bool gw_vault_has(const struct gw_vault *vault, const char *name)
{
    return vault != NULL && name != NULL && find(vault, name) != NULL;
}

enum gw_err gw_vault_describe(const struct gw_vault *vault, size_t i,
                              char name[GW_VAULT_MAX_NAME + 1], char id_tail[5])
{
    if (vault == NULL || i >= vault->count) {
        return GW_ERR_NOT_FOUND;
    }
    const struct cred *c = vault->creds[i];
    memcpy(name, c->name, strlen(c->name) + 1);
    memcpy(id_tail, c->id_tail, sizeof c->id_tail);
    return GW_OK;
}

void gw_vault_cache_stats(const struct gw_vault *vault, uint64_t *hits, uint64_t *misses)
{
    *hits = vault == NULL ? 0 : atomic_load(&vault->hits);
    *misses = vault == NULL ? 0 : atomic_load(&vault->misses);
}

void gw_vault_free(struct gw_vault *vault)
{
    if (vault == NULL) {
        return;
    }
    for (size_t i = 0; i < vault->count; i++) {
        cred_free(vault->creds[i]);
    }
    free(vault->creds);
    sodium_free(vault->master);
    free(vault);
}

/* ---- Master key ---- */

enum gw_err gw_vault_keygen(const char *path, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *key = NULL;
    int fd = -1;
    bool created = false;

    if ((err = lib_init(msg, msglen)) != GW_OK) {
        return err;
    }
    if (path == NULL || *path == '\0') {
        say(msg, msglen, "no master key file given");
        return GW_ERR_INVALID;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            say(msg, msglen,
                "%s exists already: refusing to overwrite a master key (the credential store "
                "it protects would become unreadable); choose another path or move it aside",
                path);
            return GW_ERR_EXISTS;
        }
        say(msg, msglen, "cannot create master key file %s: %s", path, strerror(errno));
        return GW_ERR_IO;
    }
    created = true;
    key = sodium_malloc(GW_VAULT_MASTER_KEY_LEN);
    if (key == NULL) {
        say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    randombytes_buf(key, GW_VAULT_MASTER_KEY_LEN);
    /* 0600 whatever the umask, and the file is still empty when its mode is set. */
    if (fchmod(fd, 0600) != 0 || write_all(fd, key, GW_VAULT_MASTER_KEY_LEN) != GW_OK ||
        fsync(fd) != 0) {
        say(msg, msglen, "cannot write master key file %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        say(msg, msglen, "cannot write master key file %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    fd = -1;
    if (sync_dir_of(path) != GW_OK) {
        say(msg, msglen, "cannot sync the directory of %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    err = GW_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (err != GW_OK && created) {
        unlink(path);
    }
    sodium_free(key);
    return err;
}

/* Reads the master key file into new sodium_malloc memory, left PROT_NONE. */
static enum gw_err load_master_key(const char *path, unsigned char **out, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *key = NULL;
    unsigned char extra;
    size_t got = 0;
    struct stat st;

    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT) {
            say(msg, msglen,
                "master key file %s does not exist: create it with 'tcgw keygen --key %s' or "
                "point --key, --config or TCGW_MASTER_KEY_FILE at the right file",
                path, path);
            return GW_ERR_NOT_FOUND;
        }
        if (errno == ELOOP) {
            say(msg, msglen, "master key file %s is a symbolic link: give the real file's path",
                path);
            return GW_ERR_PERM;
        }
        say(msg, msglen, "cannot open master key file %s: %s", path, strerror(errno));
        return GW_ERR_IO;
    }
    if (fstat(fd, &st) != 0) {
        say(msg, msglen, "cannot stat master key file %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        say(msg, msglen, "master key file %s is not a regular file", path);
        err = GW_ERR_INVALID;
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        say(msg, msglen,
            "master key file %s is accessible by group or others (mode %03o): run 'chmod 600 "
            "%s'",
            path, (unsigned)(st.st_mode & 0777), path);
        err = GW_ERR_PERM;
        goto out;
    }
    if (st.st_size != GW_VAULT_MASTER_KEY_LEN) {
        say(msg, msglen,
            "master key file %s has %lld bytes, not %d: it is not a tcgw master key (make one "
            "with 'tcgw keygen')",
            path, (long long)st.st_size, GW_VAULT_MASTER_KEY_LEN);
        err = GW_ERR_INVALID;
        goto out;
    }
    key = sodium_malloc(GW_VAULT_MASTER_KEY_LEN);
    if (key == NULL) {
        say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if (read_upto(fd, key, GW_VAULT_MASTER_KEY_LEN, &got) != GW_OK) {
        say(msg, msglen, "cannot read master key file %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    size_t more = 0;
    if (got != GW_VAULT_MASTER_KEY_LEN || read_upto(fd, &extra, 1, &more) != GW_OK || more != 0) {
        say(msg, msglen, "master key file %s changed while being read", path);
        err = GW_ERR_IO;
        goto out;
    }
    lock_away(key);
    *out = key;
    key = NULL;
    err = GW_OK;
out:
    sodium_free(key);
    close(fd);
    return err;
}

/* ---- Store file ---- */

struct cursor {
    const unsigned char *p;
    size_t left;
};

static bool take(struct cursor *c, size_t n, const unsigned char **out)
{
    if (n > c->left) {
        return false;
    }
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static bool take_u16(struct cursor *c, size_t *v)
{
    const unsigned char *b;
    if (!take(c, 2, &b)) {
        return false;
    }
    *v = ((size_t)b[0] << 8) | b[1];
    return true;
}

static bool take_field(struct cursor *c, size_t max, const unsigned char **p, size_t *n)
{
    return take_u16(c, n) && *n <= max && take(c, *n, p);
}

/* Parses the plaintext (sodium_malloc memory) into vault, which is empty. */
static enum gw_err parse_plain(struct gw_vault *vault, const unsigned char *pt, size_t len,
                               const char *path, char *msg, size_t msglen)
{
    enum gw_err err;
    struct cursor cur = {pt, len};
    const unsigned char *b;
    char prev[GW_VAULT_MAX_NAME + 1] = "";
    char why[160];

    if (!take(&cur, 4, &b)) {
        goto damaged;
    }
    uint32_t count = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    if (count > GW_VAULT_MAX_ENTRIES) {
        goto damaged;
    }
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *name_p, *id_p, *key_p;
        size_t name_n, id_n, key_n;
        char name[GW_VAULT_MAX_NAME + 1];
        if (!take_field(&cur, GW_VAULT_MAX_NAME, &name_p, &name_n) ||
            !take_field(&cur, GW_VAULT_MAX_SECRET_ID, &id_p, &id_n) ||
            !take_field(&cur, GW_VAULT_MAX_SECRET_KEY, &key_p, &key_n)) {
            goto damaged;
        }
        memcpy(name, name_p, name_n);
        name[name_n] = '\0';
        /* Strictly ascending: no duplicates, and the order put gives. */
        if (memchr(name_p, '\0', name_n) != NULL || (i > 0 && strcmp(prev, name) >= 0)) {
            goto damaged;
        }
        if ((err = gw_vault_put(vault, name, (const char *)id_p, id_n, (const char *)key_p, key_n,
                                why, sizeof why)) != GW_OK) {
            if (err == GW_ERR_INVALID) {
                say(msg, msglen, "credential store %s is damaged: entry %u: %s", path, (unsigned)i,
                    why);
            } else {
                say(msg, msglen, "%s", why);
            }
            return err;
        }
        memcpy(prev, name, name_n + 1);
    }
    if (cur.left != 0) {
        goto damaged;
    }
    return GW_OK;
damaged:
    say(msg, msglen,
        "credential store %s is damaged although it decrypted: restore it from a backup", path);
    return GW_ERR_INVALID;
}

/* Reads and decrypts the store into vault. A missing file leaves the vault empty. */
static enum gw_err load_store(struct gw_vault *vault, const char *path, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *file = NULL;
    unsigned char *pt = NULL;
    size_t got = 0;
    struct stat st;

    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT) {
            return GW_OK;
        }
        say(msg, msglen, "cannot open credential store %s: %s", path, strerror(errno));
        return GW_ERR_IO;
    }
    if (fstat(fd, &st) != 0) {
        say(msg, msglen, "cannot stat credential store %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        say(msg, msglen, "credential store %s is not a regular file", path);
        err = GW_ERR_INVALID;
        goto out;
    }
    if (st.st_size > (off_t)STORE_MAX) {
        say(msg, msglen,
            "credential store %s is larger (%lld bytes) than any store can be: it is not a tcgw "
            "credential store",
            path, (long long)st.st_size);
        err = GW_ERR_TOO_LARGE;
        goto out;
    }
    file = malloc(STORE_MAX + 1);
    if (file == NULL) {
        say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    /* Read one byte past the limit: the size may have changed since fstat. */
    if (read_upto(fd, file, STORE_MAX + 1, &got) != GW_OK) {
        say(msg, msglen, "cannot read credential store %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (got > STORE_MAX) {
        say(msg, msglen, "credential store %s is too large", path);
        err = GW_ERR_TOO_LARGE;
        goto out;
    }
    if (got < STORE_MIN) {
        say(msg, msglen,
            "credential store %s is truncated (%zu bytes, at least %d needed): restore it from a "
            "backup, or delete it to start an empty store",
            path, got, (int)STORE_MIN);
        err = GW_ERR_INVALID;
        goto out;
    }
    if (memcmp(file, STORE_MAGIC, STORE_MAGIC_LEN) != 0) {
        say(msg, msglen,
            "%s is not a tcgw credential store (format " STORE_MAGIC
            "), or its header was modified",
            path);
        err = GW_ERR_INVALID;
        goto out;
    }
    size_t ct_len = got - HEADER_LEN;
    size_t pt_cap = ct_len - TAG_LEN;
    unsigned long long pt_len = 0;
    pt = sodium_malloc(pt_cap);
    if (pt == NULL) {
        say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    open_for_reading(vault->master);
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &pt_len, NULL, file + HEADER_LEN,
                                                        ct_len, file, STORE_MAGIC_LEN,
                                                        file + STORE_MAGIC_LEN, vault->master);
    lock_away(vault->master);
    if (rc != 0 || pt_len != pt_cap) {
        say(msg, msglen, "cannot decrypt %s: wrong master key or the file was modified", path);
        err = GW_ERR_CRYPTO;
        goto out;
    }
    err = parse_plain(vault, pt, pt_cap, path, msg, msglen);
out:
    sodium_free(pt); /* zeroes the plaintext */
    free(file);
    close(fd);
    return err;
}

enum gw_err gw_vault_open(const char *key_path, const char *store_path, struct gw_vault **out,
                          char *msg, size_t msglen)
{
    enum gw_err err;
    struct gw_vault *vault = NULL;

    if ((err = lib_init(msg, msglen)) != GW_OK) {
        return err;
    }
    if (key_path == NULL || *key_path == '\0' || store_path == NULL || *store_path == '\0' ||
        out == NULL) {
        say(msg, msglen, "a master key file and a credential store file are both needed");
        return GW_ERR_INVALID;
    }
    vault = calloc(1, sizeof *vault);
    if (vault == NULL) {
        say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    atomic_init(&vault->hits, 0);
    atomic_init(&vault->misses, 0);
    if ((err = load_master_key(key_path, &vault->master, msg, msglen)) != GW_OK) {
        goto out;
    }
    if ((err = load_store(vault, store_path, msg, msglen)) != GW_OK) {
        goto out;
    }
    *out = vault;
    vault = NULL;
    err = GW_OK;
out:
    gw_vault_free(vault);
    return err;
}

/* Serialises the credentials into new sodium_malloc memory. */
static enum gw_err build_plain(const struct gw_vault *vault, unsigned char **out, size_t *out_len)
{
    size_t len = PLAIN_MIN;
    for (size_t i = 0; i < vault->count; i++) {
        len += 6 + strlen(vault->creds[i]->name) + GW_VAULT_MAX_SECRET_ID + GW_VAULT_MAX_SECRET_KEY;
    }
    /* len is an upper bound (ids and keys at their maximum); the true length is counted below. */
    unsigned char *pt = sodium_malloc(len);
    if (pt == NULL) {
        return GW_ERR_NOMEM;
    }
    size_t n = 0;
    uint32_t count = (uint32_t)vault->count;
    pt[n++] = (unsigned char)(count >> 24);
    pt[n++] = (unsigned char)(count >> 16);
    pt[n++] = (unsigned char)(count >> 8);
    pt[n++] = (unsigned char)count;
    for (size_t i = 0; i < vault->count; i++) {
        struct cred *c = vault->creds[i];
        size_t name_n = strlen(c->name);
        pt[n++] = (unsigned char)(name_n >> 8);
        pt[n++] = (unsigned char)name_n;
        memcpy(pt + n, c->name, name_n);
        n += name_n;
        pthread_mutex_lock(&c->lock);
        if (cred_open(vault, c) != GW_OK) {
            pthread_mutex_unlock(&c->lock);
            sodium_free(pt);
            return GW_ERR_INTERNAL;
        }
        const struct secret *s = c->sec;
        pt[n++] = (unsigned char)(s->id_len >> 8);
        pt[n++] = (unsigned char)s->id_len;
        memcpy(pt + n, s->id, s->id_len);
        n += s->id_len;
        pt[n++] = (unsigned char)(s->key_len >> 8);
        pt[n++] = (unsigned char)s->key_len;
        memcpy(pt + n, s->key, s->key_len);
        n += s->key_len;
        cred_close(vault, c);
        pthread_mutex_unlock(&c->lock);
    }
    *out = pt;
    *out_len = n;
    return GW_OK;
}

/* Writes bytes to "<path>.tmp.<pid>", fsyncs, renames over path, fsyncs the directory. */
static enum gw_err replace_file(const char *path, const unsigned char *bytes, size_t len, char *msg,
                                size_t msglen)
{
    enum gw_err err;
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        say(msg, msglen, "credential store path is too long");
        return GW_ERR_TOO_LARGE;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        say(msg, msglen, "cannot create %s: %s (does the directory exist and is it writable?)", tmp,
            strerror(errno));
        return GW_ERR_IO;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, bytes, len) != GW_OK || fsync(fd) != 0) {
        say(msg, msglen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        err = GW_ERR_IO;
        goto fail;
    }
    if (close(fd) != 0) {
        say(msg, msglen, "cannot write %s: %s", tmp, strerror(errno));
        err = GW_ERR_IO;
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        say(msg, msglen, "cannot replace %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto fail;
    }
    if (sync_dir_of(path) != GW_OK) {
        say(msg, msglen, "saved %s but could not sync its directory: %s", path, strerror(errno));
        return GW_ERR_IO;
    }
    return GW_OK;
fail:
    unlink(tmp);
    return err;
}

enum gw_err gw_vault_save(const struct gw_vault *vault, const char *store_path, char *msg,
                          size_t msglen)
{
    enum gw_err err;
    unsigned char *pt = NULL;
    unsigned char *file = NULL;
    size_t pt_len = 0;
    unsigned long long ct_len = 0;

    if (vault == NULL || store_path == NULL || *store_path == '\0') {
        say(msg, msglen, "no credential store file given");
        return GW_ERR_INVALID;
    }
    if ((err = build_plain(vault, &pt, &pt_len)) != GW_OK) {
        say(msg, msglen, "out of memory");
        goto out;
    }
    file = malloc(HEADER_LEN + pt_len + TAG_LEN);
    if (file == NULL) {
        say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    memcpy(file, STORE_MAGIC, STORE_MAGIC_LEN);
    randombytes_buf(file + STORE_MAGIC_LEN, NONCE_LEN);
    open_for_reading(vault->master);
    int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(file + HEADER_LEN, &ct_len, pt, pt_len,
                                                        file, STORE_MAGIC_LEN, NULL,
                                                        file + STORE_MAGIC_LEN, vault->master);
    lock_away(vault->master);
    if (rc != 0 || ct_len != pt_len + TAG_LEN) {
        say(msg, msglen, "cannot encrypt the credential store");
        err = GW_ERR_INTERNAL;
        goto out;
    }
    err = replace_file(store_path, file, HEADER_LEN + (size_t)ct_len, msg, msglen);
out:
    sodium_free(pt);
    free(file);
    return err;
}

/* ---- Signing ---- */

/* Returns the cached key for (date, service), deriving it into a slot (LRU) on a miss. */
static enum gw_err signing_key(struct gw_vault *vault, struct secret *s, const char *date,
                               const char *service, const unsigned char **key)
{
    enum gw_err err;
    size_t service_len = strlen(service);
    struct cache_slot *victim = &s->cache[0];

    s->tick++;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cache_slot *slot = &s->cache[i];
        if (slot->last_used != 0 && strcmp(slot->date, date) == 0 &&
            strcmp(slot->service, service) == 0) {
            slot->last_used = s->tick;
            atomic_fetch_add_explicit(&vault->hits, 1, memory_order_relaxed);
            *key = slot->key;
            return GW_OK;
        }
        if (slot->last_used < victim->last_used) {
            victim = slot;
        }
    }
    atomic_fetch_add_explicit(&vault->misses, 1, memory_order_relaxed);
    /* gw_tc3_string_to_sign has checked the service, so it fits the slot. */
    if (service_len > GW_TC3_MAX_SERVICE) {
        return GW_ERR_INVALID;
    }
    sodium_memzero(victim, sizeof *victim);
    if ((err = gw_tc3_derive_key(s->key, s->key_len, date, service, victim->key)) != GW_OK) {
        return err;
    }
    memcpy(victim->date, date, GW_TC3_DATE_LEN + 1);
    memcpy(victim->service, service, service_len + 1);
    victim->last_used = s->tick;
    *key = victim->key;
    return GW_OK;
}

enum gw_err gw_vault_sign(struct gw_vault *vault, const char *name,
                          const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    struct cred *c;
    char date[GW_TC3_DATE_LEN + 1];
    char sig[GW_TC3_HEX_LEN + 1];
    const unsigned char *key = NULL;
    struct gw_buf sts, auth;
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);
    gw_buf_init(&auth, GW_TC3_MAX_TEXT);

    if (vault == NULL || name == NULL || req == NULL || out == NULL) {
        return GW_ERR_INVALID;
    }
    if ((c = find(vault, name)) == NULL) {
        return GW_ERR_NOT_FOUND;
    }
    /* Everything that needs no key happens outside the lock. */
    if ((err = gw_tc3_string_to_sign(req, &sts)) != GW_OK ||
        (err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        goto out;
    }

    pthread_mutex_lock(&c->lock);
    if ((err = cred_open(vault, c)) != GW_OK) {
        pthread_mutex_unlock(&c->lock);
        goto out;
    }
    if ((err = signing_key(vault, c->sec, date, req->service, &key)) == GW_OK &&
        (err = gw_tc3_signature(key, sts.data, sts.len, sig)) == GW_OK) {
        err = gw_tc3_authorization(c->sec->id, req, sig, &auth);
    }
    cred_close(vault, c);
    pthread_mutex_unlock(&c->lock);
    if (err != GW_OK) {
        goto out;
    }
    err = gw_buf_append(out, auth.data, auth.len);
out:
    gw_buf_free(&sts);
    gw_buf_free(&auth);
    return err;
}

enum gw_err gw_vault_keep_resident(struct gw_vault *vault)
{
    for (size_t i = 0; i < vault->count; i++) {
        if (sodium_mprotect_readwrite(vault->creds[i]->sec) != 0) {
            for (size_t j = 0; j < i; j++) {
                lock_away(vault->creds[j]->sec);
            }
            return GW_ERR_INTERNAL;
        }
    }
    vault->resident = true;
    return GW_OK;
}
