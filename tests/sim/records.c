#include "records.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sim_records {
    int fd;
    pthread_mutex_t lock;
};

enum sim_err sim_records_open(const char *path, struct sim_records **out)
{
    struct sim_records *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        return SIM_ENOMEM;
    }
    r->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (r->fd < 0) {
        free(r);
        return SIM_EIO;
    }
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        (void)close(r->fd);
        free(r);
        return SIM_ENOMEM;
    }
    *out = r;
    return SIM_OK;
}

enum sim_err sim_records_write(struct sim_records *r, const json_t *record)
{
    enum sim_err err = SIM_OK;
    char *line;
    size_t len;
    size_t done = 0;

    line = json_dumps(record, JSON_COMPACT);
    if (line == NULL) {
        return SIM_ENOMEM;
    }
    len = strlen(line);
    line[len] = '\n'; /* overwrite the NUL: the buffer is not used as a string again */
    len++;
    (void)pthread_mutex_lock(&r->lock);
    while (done < len) {
        ssize_t w = write(r->fd, line + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            err = SIM_EIO;
            break;
        }
        done += (size_t)w;
    }
    (void)pthread_mutex_unlock(&r->lock);
    free(line);
    return err;
}

void sim_records_close(struct sim_records *r)
{
    if (r == NULL) {
        return;
    }
    (void)close(r->fd);
    (void)pthread_mutex_destroy(&r->lock);
    free(r);
}
