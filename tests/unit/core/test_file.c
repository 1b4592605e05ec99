/* Unit tests for gateway/core/file.c: every refusal of gw_file_open, atomic replace, the lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file.h"

/* A uid and gid that are not ours (nobody/nogroup on Debian). */
#define OTHER_ID 65534

/* A FIFO that blocked an open would hang the test: fail after this many seconds instead. */
#define HANG_SECONDS 10

struct fixture {
    char dir[64];
    char path[PATH_MAX];
    char msg[512];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-file-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/file", f->dir);
    alarm(HANG_SECONDS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    alarm(0);
    chmod(f->dir, 0700);
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
            if (unlink(path) != 0) {
                rmdir(path);
            }
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

static void make_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void expect_contents(const char *path, const char *want)
{
    char buf[256];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

/* Names in the directory that contain ".tmp.", not counting keep (or NULL). */
static size_t temp_files(const struct fixture *f, const char *keep)
{
    size_t n = 0;
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".tmp.") != NULL && (keep == NULL || strcmp(e->d_name, keep) != 0)) {
            print_message("temporary file left: %s\n", e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* gw_file_open must fail with want, leave fd untouched and say each of the given words. */
static void expect_refused(struct fixture *f, const char *path, unsigned checks, enum gw_err want,
                           const char *words1, const char *words2)
{
    int fd = -7;
    struct stat st;
    f->msg[0] = '\0';
    assert_int_equal(gw_file_open(path, "test file", checks, &fd, &st, f->msg, sizeof f->msg),
                     want);
    assert_int_equal(fd, -7);
    assert_non_null(strstr(f->msg, "test file"));
    assert_non_null(strstr(f->msg, path));
    if (words1 != NULL && strstr(f->msg, words1) == NULL) {
        fail_msg("message \"%s\" does not say \"%s\"", f->msg, words1);
    }
    if (words2 != NULL && strstr(f->msg, words2) == NULL) {
        fail_msg("message \"%s\" does not say \"%s\"", f->msg, words2);
    }
}

static void expect_opens(struct fixture *f, const char *path, unsigned checks)
{
    int fd = -1;
    struct stat st;
    enum gw_err err = gw_file_open(path, "test file", checks, &fd, &st, f->msg, sizeof f->msg);
    if (err != GW_OK) {
        fail_msg("open %s: %s: %s", path, gw_err_str(err), f->msg);
    }
    assert_true(fd >= 0);
    assert_true(S_ISREG(st.st_mode));
    /* Back to blocking, and close-on-exec. */
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    close(fd);
}

/* ---- Reading and writing ---- */

static void test_write_and_read(void **state)
{
    struct fixture *f = *state;
    static unsigned char big[200000];
    static unsigned char back[200001];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (unsigned char)(i * 7u);
    }
    int fd = open(f->path, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(gw_file_write_all(fd, big, sizeof big), GW_OK);
    assert_int_equal(gw_file_write_all(fd, big, 0), GW_OK);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    size_t got = 0;
    assert_int_equal(gw_file_read_upto(fd, back, 10, &got), GW_OK);
    assert_int_equal(got, 10);
    assert_int_equal(gw_file_read_upto(fd, back + 10, sizeof back - 10, &got), GW_OK);
    assert_int_equal(got, sizeof big - 10);
    assert_memory_equal(back, big, sizeof big);
    close(fd);

    /* A closed descriptor: GW_ERR_IO with errno set. */
    errno = 0;
    assert_int_equal(gw_file_write_all(fd, big, 1), GW_ERR_IO);
    assert_int_equal(errno, EBADF);
    errno = 0;
    assert_int_equal(gw_file_read_upto(fd, back, 1, &got), GW_ERR_IO);
    assert_int_equal(errno, EBADF);
}

/* ---- gw_file_open ---- */

static void test_open_regular(void **state)
{
    struct fixture *f = *state;
    make_file(f->path, "x", 0600);
    expect_opens(f, f->path, GW_FILE_PRIVATE);
    make_file(f->path, "x", 0400);
    expect_opens(f, f->path, GW_FILE_PRIVATE);
    /* Without GW_FILE_PRIVATE, a world-readable file is fine (a policy, a specification). */
    make_file(f->path, "x", 0644);
    expect_opens(f, f->path, GW_FILE_REGULAR);
}

static void test_open_missing(void **state)
{
    struct fixture *f = *state;
    expect_refused(f, f->path, GW_FILE_PRIVATE, GW_ERR_NOT_FOUND, "does not exist", NULL);
}

static void test_open_fifo(void **state)
{
    struct fixture *f = *state;
    /* Nobody ever writes to it: a blocking open would wait until the alarm kills the test. */
    assert_int_equal(mkfifo(f->path, 0600), 0);
    expect_refused(f, f->path, GW_FILE_PRIVATE, GW_ERR_INVALID, "named pipe (FIFO)",
                   "not a regular file");
    expect_refused(f, f->path, GW_FILE_REGULAR, GW_ERR_INVALID, "FIFO", NULL);
}

static void test_open_symlink(void **state)
{
    struct fixture *f = *state;
    char real[PATH_MAX];
    snprintf(real, sizeof real, "%s/real", f->dir);
    make_file(real, "x", 0600);
    assert_int_equal(symlink(real, f->path), 0);
    expect_refused(f, f->path, GW_FILE_PRIVATE, GW_ERR_PERM, "symbolic link", NULL);
    expect_refused(f, f->path, GW_FILE_REGULAR, GW_ERR_PERM, "symbolic link", NULL);
    /* Dangling too. */
    unlink(real);
    expect_refused(f, f->path, GW_FILE_PRIVATE, GW_ERR_PERM, "symbolic link", NULL);
}

static void test_open_directory_and_device(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mkdir(f->path, 0700), 0);
    expect_refused(f, f->path, GW_FILE_PRIVATE, GW_ERR_INVALID, "a directory",
                   "not a regular file");
    expect_refused(f, "/dev/null", GW_FILE_REGULAR, GW_ERR_INVALID, "character device", NULL);
}

static void test_open_loose_modes(void **state)
{
    struct fixture *f = *state;
    char fix[PATH_MAX + 16];
    snprintf(fix, sizeof fix, "chmod 600 %s", f->path);
    /* World-readable, group-writable, and every other group or other bit. */
    static const mode_t loose[] = {0644, 0620, 0640, 0660, 0604, 0602, 0601, 0610, 0666, 0777};
    for (size_t i = 0; i < sizeof loose / sizeof *loose; i++) {
        make_file(f->path, "x", loose[i]);
        expect_refused(f, f->path, GW_FILE_PRIVATE, GW_ERR_PERM, fix, "group or others");
    }
    make_file(f->path, "x", 0644);
    expect_refused(f, f->path, GW_FILE_PRIVATE, GW_ERR_PERM, "(mode 644)", NULL);
}

static void test_open_foreign_owner(void **state)
{
    struct fixture *f = *state;
    make_file(f->path, "x", 0600);
    if (geteuid() != 0) {
        /* Only root can give a file away; what a non-root user can check is its own file. */
        print_message("not root: checking only that our own file is accepted\n");
        expect_opens(f, f->path, GW_FILE_PRIVATE);
        return;
    }
    char fix[PATH_MAX + 16];
    snprintf(fix, sizeof fix, "chown 0 %s", f->path);
    assert_int_equal(chown(f->path, OTHER_ID, OTHER_ID), 0);
    expect_refused(f, f->path, GW_FILE_PRIVATE, GW_ERR_PERM, "belongs to uid 65534", fix);
    expect_opens(f, f->path, GW_FILE_REGULAR);
    /* Root's files are fine whoever runs tcgw: root could change them anyway. */
    assert_int_equal(chown(f->path, 0, OTHER_ID), 0);
    expect_opens(f, f->path, GW_FILE_PRIVATE);
}

/* ---- gw_file_replace ---- */

static void replace_ok(struct fixture *f, const char *text, mode_t mode)
{
    enum gw_err err =
        gw_file_replace(f->path, "test file", text, strlen(text), mode, f->msg, sizeof f->msg);
    if (err != GW_OK) {
        fail_msg("replace: %s: %s", gw_err_str(err), f->msg);
    }
}

static void test_replace_new_file(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    mode_t old_umask = umask(022);
    replace_ok(f, "first", 0600);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    expect_contents(f->path, "first");
    unlink(f->path);
    /* The mode asked for, whatever the umask. */
    umask(077);
    replace_ok(f, "second", 0640);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    expect_contents(f->path, "second");
    umask(old_umask);
    assert_int_equal(temp_files(f, NULL), 0);
}

static void test_replace_keeps_mode(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    static const mode_t modes[] = {0400, 0640, 0644, 0600};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        make_file(f->path, "old", modes[i]);
        replace_ok(f, "new", 0600);
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, modes[i]);
        expect_contents(f->path, "new");
    }
    assert_int_equal(temp_files(f, NULL), 0);
}

static void test_replace_keeps_owner(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    make_file(f->path, "old", 0600);
    if (geteuid() != 0) {
        print_message("not root: checking only that our own file stays ours\n");
        replace_ok(f, "new", 0600);
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_uid, geteuid());
        return;
    }
    assert_int_equal(chown(f->path, OTHER_ID, OTHER_ID), 0);
    replace_ok(f, "new", 0600);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_uid, OTHER_ID);
    assert_int_equal(st.st_gid, OTHER_ID);
    assert_int_equal(st.st_mode & 07777, 0600);
    expect_contents(f->path, "new");
}

/* A write that fails half-way (the file size limit) removes the temporary file. */
static void test_replace_cleanup_on_write_failure(void **state)
{
    struct fixture *f = *state;
    struct rlimit old, small = {.rlim_cur = 16, .rlim_max = RLIM_INFINITY};
    char big[100];
    memset(big, 'b', sizeof big);
    make_file(f->path, "old", 0600);

    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of a signal */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    enum gw_err err =
        gw_file_replace(f->path, "test file", big, sizeof big, 0600, f->msg, sizeof f->msg);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(err, GW_ERR_IO);
    assert_non_null(strstr(f->msg, "cannot write"));
    assert_non_null(strstr(f->msg, f->path));
    assert_int_equal(temp_files(f, NULL), 0);
    expect_contents(f->path, "old");
}

/* When the old owner cannot be kept (not root), nothing changes and nothing is left behind. */
static void test_replace_cleanup_on_owner_failure(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0) {
        print_message("not root: cannot make a file owned by someone else\n");
        return;
    }
    make_file(f->path, "old", 0644);
    assert_int_equal(chmod(f->dir, 0777), 0);
    /* As another user: the temporary file is ours, the old file root's, and we cannot chown. */
    assert_int_equal(setegid(OTHER_ID), 0);
    assert_int_equal(seteuid(OTHER_ID), 0);
    enum gw_err err = gw_file_replace(f->path, "test file", "new", 3, 0600, f->msg, sizeof f->msg);
    assert_int_equal(seteuid(0), 0);
    assert_int_equal(setegid(0), 0);
    assert_int_equal(err, GW_ERR_PERM);
    assert_non_null(strstr(f->msg, "owner"));
    assert_int_equal(temp_files(f, NULL), 0);
    expect_contents(f->path, "old");
}

static void test_replace_refusals(void **state)
{
    struct fixture *f = *state;
    char target[PATH_MAX], missing[PATH_MAX];
    struct stat st;

    /* A directory is not replaced. */
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_int_equal(gw_file_replace(f->path, "test file", "x", 1, 0600, f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "a directory"));
    rmdir(f->path);

    /* Nor a symbolic link, which stays as it was. */
    snprintf(target, sizeof target, "%s/target", f->dir);
    make_file(target, "target", 0600);
    assert_int_equal(symlink(target, f->path), 0);
    assert_int_equal(gw_file_replace(f->path, "test file", "x", 1, 0600, f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "symbolic link"));
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    expect_contents(target, "target");
    unlink(f->path);

    /* A directory that does not exist: the message names the file. */
    snprintf(missing, sizeof missing, "%s/no/such/file", f->dir);
    assert_int_equal(gw_file_replace(missing, "test file", "x", 1, 0600, f->msg, sizeof f->msg),
                     GW_ERR_IO);
    assert_non_null(strstr(f->msg, missing));
    assert_int_equal(temp_files(f, NULL), 0);
}

/* A temporary file left by a killed writer, whatever its name, does not stop the next one. */
static void test_replace_stale_temp(void **state)
{
    struct fixture *f = *state;
    char stale[PATH_MAX + 16];
    snprintf(stale, sizeof stale, "%s.tmp.1", f->path);
    make_file(stale, "half", 0600);
    make_file(f->path, "old", 0600);
    for (int i = 0; i < 20; i++) {
        replace_ok(f, "new", 0600);
    }
    expect_contents(f->path, "new");
    assert_int_equal(temp_files(f, "file.tmp.1"), 0);
}

/* ---- gw_file_lock ---- */

static bool can_lock(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    /* Another open file description: conflicts with the lock even within this process. */
    bool ok = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (!ok) {
        assert_int_equal(errno, EWOULDBLOCK);
    }
    close(fd);
    return ok;
}

static void test_lock(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    int fd = -1;

    assert_int_equal(gw_file_lock(f->path, "test lock", &fd, f->msg, sizeof f->msg), GW_OK);
    assert_true(fd >= 0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 0);
    assert_false(can_lock(f->path));

    /* Another process waits until the lock is released. */
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int cfd = -1;
        char m[256];
        /* The inherited descriptor shares the parent's lock: only the parent's may hold it. */
        close(fd);
        close(ready[0]);
        alarm(HANG_SECONDS);
        if (gw_file_lock(f->path, "test lock", &cfd, m, sizeof m) != GW_OK) {
            _exit(2);
        }
        _exit(write(ready[1], "L", 1) == 1 ? 0 : 3);
    }
    close(ready[1]);
    struct pollfd p = {.fd = ready[0], .events = POLLIN};
    assert_int_equal(poll(&p, 1, 300), 0); /* still waiting */
    gw_file_unlock(fd);
    assert_int_equal(poll(&p, 1, HANG_SECONDS * 1000), 1);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(ready[0]);
    assert_true(can_lock(f->path)); /* the child's exit released it */

    /* An existing lock file is reused, not replaced. */
    assert_int_equal(gw_file_lock(f->path, "test lock", &fd, f->msg, sizeof f->msg), GW_OK);
    gw_file_unlock(fd);
    gw_file_unlock(-1);
}

static void test_lock_refusals(void **state)
{
    struct fixture *f = *state;
    char missing[PATH_MAX], real[PATH_MAX];
    int fd = -7;

    assert_int_equal(mkfifo(f->path, 0600), 0);
    assert_int_equal(gw_file_lock(f->path, "test lock", &fd, f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "FIFO"));
    unlink(f->path);

    snprintf(real, sizeof real, "%s/real", f->dir);
    make_file(real, "", 0600);
    assert_int_equal(symlink(real, f->path), 0);
    assert_int_equal(gw_file_lock(f->path, "test lock", &fd, f->msg, sizeof f->msg), GW_ERR_PERM);
    assert_non_null(strstr(f->msg, "symbolic link"));

    snprintf(missing, sizeof missing, "%s/no/such/lock", f->dir);
    assert_int_equal(gw_file_lock(missing, "test lock", &fd, f->msg, sizeof f->msg), GW_ERR_IO);
    assert_non_null(strstr(f->msg, missing));
    assert_int_equal(fd, -7);
}

static void test_sync_dir(void **state)
{
    struct fixture *f = *state;
    char missing[PATH_MAX];
    assert_int_equal(gw_file_sync_dir(f->path), GW_OK);
    assert_int_equal(gw_file_sync_dir("relative-name"), GW_OK);
    assert_int_equal(gw_file_sync_dir("/at-the-root"), GW_OK);
    snprintf(missing, sizeof missing, "%s/no/such/file", f->dir);
    assert_int_equal(gw_file_sync_dir(missing), GW_ERR_IO);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_write_and_read),
        T(test_open_regular),
        T(test_open_missing),
        T(test_open_fifo),
        T(test_open_symlink),
        T(test_open_directory_and_device),
        T(test_open_loose_modes),
        T(test_open_foreign_owner),
        T(test_replace_new_file),
        T(test_replace_keeps_mode),
        T(test_replace_keeps_owner),
        T(test_replace_cleanup_on_write_failure),
        T(test_replace_cleanup_on_owner_failure),
        T(test_replace_refusals),
        T(test_replace_stale_temp),
        T(test_lock),
        T(test_lock_refusals),
        T(test_sync_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
