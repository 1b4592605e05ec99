/*
 * files: the vault's files. The master key file (written once by keygen, then only read), the
 * credential store (read whole, replaced atomically), and the store's writer lock. How a file is
 * opened, checked and replaced is core/file's business; this file knows which checks each needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "vault/vault_int.h"

#define KEY_WHAT "master key file"
#define STORE_WHAT "credential store"
#define LOCK_WHAT "credential store lock"

/* ---- Master key ---- */

enum gw_err gw_vault_keygen(const char *path, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *key = NULL;
    int fd = -1;
    bool created = false;

    if (sodium_init() < 0) {
        gw_say(msg, msglen, "cannot initialise libsodium");
        return GW_ERR_INTERNAL;
    }
    if (path == NULL || *path == '\0') {
        gw_say(msg, msglen, "no master key file given");
        return GW_ERR_INVALID;
    }
    /* O_EXCL|O_NOFOLLOW: never overwrite a key, not even through a dangling symbolic link. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            gw_say(msg, msglen,
                   "%s exists already: refusing to overwrite a master key (the credential "
                   "store it protects would become unreadable); choose another path or move "
                   "it aside",
                   path);
            return GW_ERR_EXISTS;
        }
        gw_say(msg, msglen, "cannot create master key file %s: %s", path, strerror(errno));
        return GW_ERR_IO;
    }
    created = true;
    if ((key = vault_mem_alloc(GW_VAULT_MASTER_KEY_LEN)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    randombytes_buf(key, GW_VAULT_MASTER_KEY_LEN);
    /* 0600 whatever the umask, and the file is still empty when its mode is set. */
    if (fchmod(fd, 0600) != 0 || gw_file_write_all(fd, key, GW_VAULT_MASTER_KEY_LEN) != GW_OK ||
        fsync(fd) != 0) {
        gw_say(msg, msglen, "cannot write master key file %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        gw_say(msg, msglen, "cannot write master key file %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (gw_file_sync_dir(path) != GW_OK) {
        gw_say(msg, msglen, "cannot sync the directory of %s: %s", path, strerror(errno));
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
    vault_mem_free(key);
    return err;
}

enum gw_err vault_master_load(const char *path, unsigned char **out, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *key = NULL;
    unsigned char extra;
    size_t got = 0, more = 0;
    struct stat st;
    int fd = -1;

    err = gw_file_open(path, KEY_WHAT, GW_FILE_PRIVATE, &fd, &st, msg, msglen);
    if (err == GW_ERR_NOT_FOUND) {
        gw_say(msg, msglen,
               "master key file %s does not exist: create it with 'tcgw keygen --key %s' or "
               "point --key, --config or TCGW_MASTER_KEY_FILE at the right file",
               path, path);
        return err;
    }
    if (err != GW_OK) {
        return err;
    }
    if (st.st_size != GW_VAULT_MASTER_KEY_LEN) {
        gw_say(msg, msglen,
               "master key file %s has %lld bytes, not %d: it is not a tcgw master key (make "
               "one with 'tcgw keygen')",
               path, (long long)st.st_size, GW_VAULT_MASTER_KEY_LEN);
        err = GW_ERR_INVALID;
        goto out;
    }
    if ((key = vault_mem_alloc(GW_VAULT_MASTER_KEY_LEN)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if (gw_file_read_upto(fd, key, GW_VAULT_MASTER_KEY_LEN, &got) != GW_OK) {
        gw_say(msg, msglen, "cannot read master key file %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (got != GW_VAULT_MASTER_KEY_LEN || gw_file_read_upto(fd, &extra, 1, &more) != GW_OK ||
        more != 0) {
        gw_say(msg, msglen, "master key file %s changed while being read", path);
        err = GW_ERR_IO;
        goto out;
    }
    vault_mem_noaccess(key);
    *out = key;
    key = NULL;
    err = GW_OK;
out:
    vault_mem_free(key);
    close(fd);
    return err;
}

/* ---- Store ---- */

enum gw_err vault_store_check(const char *path, char *msg, size_t msglen)
{
    int fd = -1;
    enum gw_err err = gw_file_open(path, STORE_WHAT, GW_FILE_PRIVATE, &fd, NULL, msg, msglen);
    if (err == GW_ERR_NOT_FOUND) {
        return GW_OK;
    }
    if (err == GW_OK) {
        close(fd);
    }
    return err;
}

enum gw_err vault_store_read(const char *path, unsigned char **out, size_t *out_len, char *msg,
                             size_t msglen)
{
    enum gw_err err;
    unsigned char *file = NULL;
    size_t got = 0;
    struct stat st;
    int fd = -1;

    if ((err = gw_file_open(path, STORE_WHAT, GW_FILE_PRIVATE, &fd, &st, msg, msglen)) != GW_OK) {
        return err;
    }
    if (st.st_size > (off_t)VAULT_STORE_MAX) {
        gw_say(msg, msglen,
               "credential store %s is larger (%lld bytes) than any store can be: it is not a "
               "tcgw credential store",
               path, (long long)st.st_size);
        err = GW_ERR_TOO_LARGE;
        goto out;
    }
    if ((file = malloc(VAULT_STORE_MAX + 1)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    /* Read one byte past the limit: the size may have changed since fstat. */
    if (gw_file_read_upto(fd, file, VAULT_STORE_MAX + 1, &got) != GW_OK) {
        gw_say(msg, msglen, "cannot read credential store %s: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (got > VAULT_STORE_MAX) {
        gw_say(msg, msglen, "credential store %s is too large", path);
        err = GW_ERR_TOO_LARGE;
        goto out;
    }
    *out = file;
    *out_len = got;
    file = NULL;
    err = GW_OK;
out:
    free(file);
    close(fd);
    return err;
}

enum gw_err gw_vault_save(struct gw_vault *vault, const char *store_path, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *file = NULL;
    size_t len = 0;

    if (vault == NULL || store_path == NULL || *store_path == '\0') {
        gw_say(msg, msglen, "no credential store file given");
        return GW_ERR_INVALID;
    }
    /* Saving elsewhere than the store whose lock is held would write without the lock. */
    if (vault->locked_store != NULL && strcmp(vault->locked_store, store_path) != 0) {
        gw_say(msg, msglen, "this vault was opened to update %s, not %s", vault->locked_store,
               store_path);
        return GW_ERR_INVALID;
    }
    if (vault->master == NULL || vault->token_key == NULL) {
        gw_say(msg, msglen, "this vault has no master key to save with");
        return GW_ERR_INVALID;
    }
    /* Above the store read and above anything saved here before: generations only grow. */
    uint64_t next = (vault->hdr.generation > vault->seen ? vault->hdr.generation : vault->seen) + 1;
    if ((err = vault_store_encode(vault, next, &file, &len)) != GW_OK) {
        gw_say(msg, msglen, "%s",
               err == GW_ERR_NOMEM ? "out of memory" : "cannot encrypt the credential store");
        return err;
    }
    err = gw_file_replace(store_path, STORE_WHAT, file, len, 0600, msg, msglen);
    free(file);
    if (err != GW_OK) {
        return err;
    }
    vault->hdr.generation = next;
    vault->hdr.format = 3;
    /* After the store: a crash between the two leaves the store newer, never falsely older. */
    char why[256];
    if (vault_generation_write(store_path, next, why, sizeof why) != GW_OK) {
        gw_say(msg, msglen,
               "the store was saved (generation %llu), but its generation file was not: %s",
               (unsigned long long)next, why);
        return GW_ERR_IO;
    }
    vault->seen = next;
    return GW_OK;
}

enum gw_err vault_store_lock(const char *path, int *fd, char *msg, size_t msglen)
{
    char lock[PATH_MAX];
    int n = snprintf(lock, sizeof lock, "%s.lock", path);
    if (n < 0 || (size_t)n >= sizeof lock) {
        gw_say(msg, msglen, "credential store path %s is too long", path);
        return GW_ERR_TOO_LARGE;
    }
    return gw_file_lock(lock, LOCK_WHAT, fd, msg, msglen);
}
