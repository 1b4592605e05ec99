/*
 * file: opening files that must be what they claim to be, and writing files that must survive a
 * crash. Used for the master key and the credential store; meant for the audit log and the policy
 * loader too.
 *
 * Every function that takes msg writes there (size msglen), on failure, a sentence that names the
 * file and says what to change. what is how that sentence calls the file ("master key file").
 */
#ifndef GW_FILE_H
#define GW_FILE_H

#include <stddef.h>
#include <sys/stat.h>

#include "core/errors.h"

/* Checks for gw_file_open. Every open refuses symbolic links and anything but a regular file. */
#define GW_FILE_REGULAR 0u
/*
 * For key and credential files, as OpenSSH checks a private key: refuse a file that group or
 * others may read or write, or that belongs to a user other than the effective uid or root.
 */
#define GW_FILE_PRIVATE 1u

/*
 * Writes all n bytes to fd, retrying after EINTR and short writes. GW_ERR_IO with errno set when
 * write(2) fails.
 */
enum gw_err gw_file_write_all(int fd, const void *p, size_t n) GW_MUST_CHECK;

/*
 * Reads until max bytes or end of file; *got says how many came. Getting max bytes means there may
 * be more. GW_ERR_IO with errno set when read(2) fails.
 */
enum gw_err gw_file_read_upto(int fd, void *p, size_t max, size_t *got) GW_MUST_CHECK;

/*
 * Opens path for reading without following a symbolic link and without blocking on a FIFO or a
 * device (O_NONBLOCK, cleared again once the file is known to be regular), then applies checks.
 * On success *fd is new (close it) and *st, unless st is NULL, describes the open file.
 * GW_ERR_NOT_FOUND: no such file. GW_ERR_PERM: a symbolic link, or (GW_FILE_PRIVATE) a foreign
 * owner or group/other permissions; msg gives the command that fixes it. GW_ERR_INVALID: not a
 * regular file. GW_ERR_IO: any other failure. On failure *fd and *st are untouched.
 */
enum gw_err gw_file_open(const char *path, const char *what, unsigned checks, int *fd,
                         struct stat *st, char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * Replaces path with the len bytes at p so that a reader, or the file after a crash, holds either
 * the old contents or the new, never a mix: writes a temporary file "<path>.tmp.XXXXXX" (random
 * suffix, created exclusively, mode 0600) in the same directory, fsyncs it, renames it over path,
 * and fsyncs the directory. When path exists, the new file keeps its owner, group and permission
 * bits; otherwise it gets mode. The temporary file is removed on every failure.
 * GW_ERR_INVALID: path exists but is not a regular file (a symbolic link is not followed).
 * GW_ERR_PERM: the old owner cannot be kept (only root may give a file away). GW_ERR_IO: any other
 * failure; when only the final directory fsync failed, path has been replaced already.
 */
enum gw_err gw_file_replace(const char *path, const char *what, const void *p, size_t len,
                            mode_t mode, char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * fsyncs the directory that holds path, so that a file created or renamed in it survives a crash.
 * File systems that cannot sync a directory (EINVAL) count as success. GW_ERR_IO with errno set.
 */
enum gw_err gw_file_sync_dir(const char *path) GW_MUST_CHECK;

/*
 * Takes an exclusive flock(2) on path, creating it empty with mode 0600 if needed; waits while
 * another process holds it. The lock file is never removed (removing it would let two writers lock
 * two different files). On success *fd is the held lock: gw_file_unlock releases it.
 * GW_ERR_PERM, GW_ERR_INVALID, GW_ERR_IO as for gw_file_open.
 */
enum gw_err gw_file_lock(const char *path, const char *what, int *fd, char *msg,
                         size_t msglen) GW_MUST_CHECK;

/* Releases a lock from gw_file_lock. Accepts -1. */
void gw_file_unlock(int fd);

#endif
