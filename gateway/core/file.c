#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Attempts at a fresh temporary name: collisions are one in 62^6 each, so this is plenty. */
#define TEMP_TRIES 100
#define TEMP_SUFFIX_LEN 6

enum gw_err gw_file_write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return GW_ERR_IO;
        }
        if (w == 0) {
            /* No progress and no error: retrying would spin forever. */
            errno = EIO;
            return GW_ERR_IO;
        }
        b += (size_t)w;
        n -= (size_t)w;
    }
    return GW_OK;
}

enum gw_err gw_file_read_upto(int fd, void *p, size_t max, size_t *got)
{
    unsigned char *b = p;
    size_t n = 0;
    while (n < max) {
        ssize_t r = read(fd, b + n, max - n);
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

static const char *kind_of(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO:
        return "a named pipe (FIFO)";
    case S_IFDIR:
        return "a directory";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFSOCK:
        return "a socket";
    case S_IFLNK:
        return "a symbolic link";
    default:
        return "a special file";
    }
}

/* Turns a failed open(2) of an existing-file path into an error and a message. */
static enum gw_err open_failed(const char *path, const char *what, int e, char *msg, size_t msglen)
{
    struct stat st;
    if (e == ENOENT) {
        gw_say(msg, msglen, "%s %s does not exist", what, path);
        return GW_ERR_NOT_FOUND;
    }
    /* O_NOFOLLOW gives ELOOP for a link; a loop in the directories gives it too. */
    if (e == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        gw_say(
            msg, msglen,
            "%s %s is a symbolic link: give the path of the file itself (links are not followed, "
            "so nobody can redirect tcgw to another file)",
            what, path);
        return GW_ERR_PERM;
    }
    gw_say(msg, msglen, "cannot open %s %s: %s", what, path, strerror(e));
    return GW_ERR_IO;
}

static enum gw_err check_stat(const char *path, const char *what, const struct stat *st,
                              unsigned checks, char *msg, size_t msglen)
{
    if (!S_ISREG(st->st_mode)) {
        gw_say(msg, msglen, "%s %s is %s, not a regular file: give the path of a file", what, path,
               kind_of(st->st_mode));
        return GW_ERR_INVALID;
    }
    if ((checks & GW_FILE_PRIVATE) == 0) {
        return GW_OK;
    }
    /* Whoever owns the file can change it: that must be us, or root who can do anything anyway. */
    uid_t me = geteuid();
    if (st->st_uid != me && st->st_uid != 0) {
        gw_say(msg, msglen,
               "%s %s belongs to uid %u, but tcgw runs as uid %u: run tcgw as the file's owner, or "
               "take the file over with 'chown %u %s'",
               what, path, (unsigned)st->st_uid, (unsigned)me, (unsigned)me, path);
        return GW_ERR_PERM;
    }
    if ((st->st_mode & 077) != 0) {
        gw_say(msg, msglen,
               "%s %s is accessible by group or others (mode %03o): run 'chmod 600 %s'", what, path,
               (unsigned)(st->st_mode & 0777), path);
        return GW_ERR_PERM;
    }
    return GW_OK;
}

/* fstat, check, and back to blocking reads: a regular file never blocks, so O_NONBLOCK is moot. */
static enum gw_err check_open(int fd, const char *path, const char *what, unsigned checks,
                              struct stat *st, char *msg, size_t msglen)
{
    enum gw_err err;
    if (fstat(fd, st) != 0) {
        gw_say(msg, msglen, "cannot stat %s %s: %s", what, path, strerror(errno));
        return GW_ERR_IO;
    }
    if ((err = check_stat(path, what, st, checks, msg, msglen)) != GW_OK) {
        return err;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        gw_say(msg, msglen, "cannot use %s %s: %s", what, path, strerror(errno));
        return GW_ERR_IO;
    }
    return GW_OK;
}

enum gw_err gw_file_open(const char *path, const char *what, unsigned checks, int *fd,
                         struct stat *st, char *msg, size_t msglen)
{
    enum gw_err err;
    struct stat got;

    /* O_NONBLOCK: opening a FIFO would otherwise wait, maybe forever, for a writer. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (f < 0) {
        return open_failed(path, what, errno, msg, msglen);
    }
    if ((err = check_open(f, path, what, checks, &got, msg, msglen)) != GW_OK) {
        goto out;
    }
    *fd = f;
    f = -1;
    if (st != NULL) {
        *st = got;
    }
    err = GW_OK;
out:
    if (f >= 0) {
        close(f);
    }
    return err;
}

enum gw_err gw_file_sync_dir(const char *path)
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
            errno = ENAMETOOLONG;
            return GW_ERR_IO;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return GW_ERR_IO;
    }
    /* Some file systems cannot sync a directory (EINVAL); the create or rename itself is done. */
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc == 0 || saved == EINVAL) {
        return GW_OK;
    }
    errno = saved;
    return GW_ERR_IO;
}

/*
 * Creates "<path>.tmp.XXXXXX" exclusively with mode 0600 and a random suffix, so that a temporary
 * file left by a killed writer (in a container every writer is PID 1) never blocks the next one.
 */
static enum gw_err create_temp(const char *path, const char *what, char tmp[PATH_MAX], int *fd,
                               char *msg, size_t msglen)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    int n = snprintf(tmp, PATH_MAX, "%s.tmp.%0*d", path, TEMP_SUFFIX_LEN, 0);
    if (n < 0 || n >= PATH_MAX) {
        gw_say(msg, msglen, "the path of %s %s is too long", what, path);
        return GW_ERR_TOO_LARGE;
    }
    char *suffix = tmp + n - TEMP_SUFFIX_LEN;
    if (sodium_init() < 0) {
        gw_say(msg, msglen, "cannot initialise libsodium for a random file name");
        return GW_ERR_INTERNAL;
    }
    for (int attempt = 0; attempt < TEMP_TRIES; attempt++) {
        for (size_t i = 0; i < TEMP_SUFFIX_LEN; i++) {
            suffix[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
        }
        int f = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (f >= 0) {
            *fd = f;
            return GW_OK;
        }
        if (errno != EEXIST) {
            break;
        }
    }
    gw_say(
        msg, msglen,
        "cannot create a temporary file beside %s %s: %s (does the directory exist, and may tcgw "
        "write to it?)",
        what, path, strerror(errno));
    return GW_ERR_IO;
}

enum gw_err gw_file_replace(const char *path, const char *what, const void *p, size_t len,
                            mode_t mode, char *msg, size_t msglen)
{
    enum gw_err err;
    char tmp[PATH_MAX];
    struct stat old, st;
    bool have_old = false;
    bool tmp_exists = false;
    int fd = -1;

    if (lstat(path, &old) == 0) {
        if (!S_ISREG(old.st_mode)) {
            gw_say(msg, msglen, "%s %s is %s, not a regular file: refusing to replace it", what,
                   path, kind_of(old.st_mode));
            return GW_ERR_INVALID;
        }
        have_old = true;
    } else if (errno != ENOENT) {
        gw_say(msg, msglen, "cannot look at %s %s: %s", what, path, strerror(errno));
        return GW_ERR_IO;
    }
    if ((err = create_temp(path, what, tmp, &fd, msg, msglen)) != GW_OK) {
        return err;
    }
    tmp_exists = true;

    if (fstat(fd, &st) != 0) {
        gw_say(msg, msglen, "cannot stat %s: %s", tmp, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    /*
     * Keep the owner: a store that root rewrote for the service user must stay readable by it.
     * Before fchmod, because a chown by a non-root user clears the set-id bits.
     */
    if (have_old && (st.st_uid != old.st_uid || st.st_gid != old.st_gid) &&
        fchown(fd, old.st_uid, old.st_gid) != 0) {
        gw_say(
            msg, msglen,
            "cannot give the new %s %s the owner of the old one (uid %u, gid %u): %s; run tcgw as "
            "that user",
            what, path, (unsigned)old.st_uid, (unsigned)old.st_gid, strerror(errno));
        err = GW_ERR_PERM;
        goto out;
    }
    if (fchmod(fd, have_old ? (old.st_mode & 07777) : mode) != 0 ||
        gw_file_write_all(fd, p, len) != GW_OK || fsync(fd) != 0) {
        gw_say(msg, msglen, "cannot write %s (the new %s %s): %s", tmp, what, path,
               strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        gw_say(msg, msglen, "cannot write %s (the new %s %s): %s", tmp, what, path,
               strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (rename(tmp, path) != 0) {
        gw_say(msg, msglen, "cannot replace %s %s: %s", what, path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    tmp_exists = false;
    if (gw_file_sync_dir(path) != GW_OK) {
        gw_say(msg, msglen, "replaced %s %s but could not sync its directory: %s", what, path,
               strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    err = GW_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (tmp_exists) {
        unlink(tmp);
    }
    return err;
}

enum gw_err gw_file_lock(const char *path, const char *what, int *fd, char *msg, size_t msglen)
{
    enum gw_err err;
    struct stat st;

    /* Read-only is enough for flock, and O_NONBLOCK keeps a FIFO planted here from hanging us. */
    int f = open(path, O_RDONLY | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (f < 0) {
        if (errno == ENOENT) {
            gw_say(msg, msglen, "cannot create %s %s: its directory does not exist", what, path);
            return GW_ERR_IO;
        }
        return open_failed(path, what, errno, msg, msglen);
    }
    if ((err = check_open(f, path, what, GW_FILE_REGULAR, &st, msg, msglen)) != GW_OK) {
        goto out;
    }
    while (flock(f, LOCK_EX) != 0) {
        if (errno != EINTR) {
            gw_say(msg, msglen, "cannot lock %s %s: %s", what, path, strerror(errno));
            err = GW_ERR_IO;
            goto out;
        }
    }
    *fd = f;
    f = -1;
    err = GW_OK;
out:
    if (f >= 0) {
        close(f);
    }
    return err;
}

void gw_file_unlock(int fd)
{
    if (fd >= 0) {
        /* Closing the only descriptor of the open file releases the flock. */
        close(fd);
    }
}
