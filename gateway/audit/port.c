#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "audit/encode.h"
#include "core/loop.h"

struct gw_audit_port {
    struct gw_audit *audit;
    struct gw_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct list done;
    size_t outstanding; /* held calls not yet handed back to the worker */
    bool closed;
    bool wake; /* writer-only: woken at the end of this round */
};

void audit_hand_back(struct gw_audit *a, struct entry *e, bool recorded)
{
    struct gw_audit_port *p = e->port;
    struct entry *back = e->back;
    e->back = NULL;
    back->call = e->call;
    back->recorded = recorded;
    e->call = NULL;
    if (!recorded) {
        atomic_fetch_add(&a->unrecorded, 1);
    }
    pthread_mutex_lock(&p->mu);
    if (p->closed) {
        free(back);
    } else {
        audit_list_push(&p->done, back);
        p->wake = true;
    }
    pthread_mutex_unlock(&p->mu);
}

void audit_wake_ports(struct gw_audit *a)
{
    pthread_mutex_lock(&a->mu);
    size_t n = a->port_count;
    pthread_mutex_unlock(&a->mu);
    for (size_t i = 0; i < n; i++) {
        struct gw_audit_port *p = a->ports[i];
        pthread_mutex_lock(&p->mu);
        if (p->wake && !p->closed) {
            gw_loop_wake(p->loop);
        }
        p->wake = false;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* ---- ports --------------------------------------------------------------------------------- */

struct gw_audit_port *gw_audit_port_new(struct gw_audit *a, struct gw_loop *loop)
{
    struct gw_audit_port *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->audit = a;
    p->loop = loop;
    pthread_mutex_init(&p->mu, NULL);
    audit_cond_init_monotonic(
        &p->cv); /* gw_audit_port_close waits on it with a monotonic deadline */
    audit_list_init(&p->done);
    pthread_mutex_lock(&a->mu);
    if (a->port_count == PORTS_MAX) {
        pthread_mutex_unlock(&a->mu);
        free(p);
        return NULL;
    }
    a->ports[a->port_count++] = p;
    pthread_mutex_unlock(&a->mu);
    return p;
}

enum gw_err gw_audit_port_submit(struct gw_audit_port *p, struct gw_call *call, bool hold)
{
    struct gw_audit *a = p->audit;
    struct entry *e = calloc(1, sizeof *e);
    if (e == NULL || (hold && (e->back = calloc(1, sizeof *e->back)) == NULL) ||
        gw_audit_encode_call(call, a->redactor, &e->body, &e->len) != GW_OK) {
        if (e != NULL) {
            free(e->back);
            free(e->body);
        }
        free(e);
        return GW_ERR_NOMEM;
    }
    if (hold) {
        e->port = p;
        e->call = call;
        e->deadline_ms = audit_now_ms() + a->o.hold_ms;
        pthread_mutex_lock(&p->mu);
        p->outstanding++;
        pthread_mutex_unlock(&p->mu);
    }
    atomic_fetch_add(&a->submitted, 1);
    pthread_mutex_lock(&a->mu);
    bool idle = a->in.head == NULL;
    audit_list_push(&a->in, e);
    if (idle) {
        pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return GW_OK;
}

void gw_audit_port_drain(struct gw_audit_port *p, gw_audit_done_fn fn, void *arg)
{
    pthread_mutex_lock(&p->mu);
    struct list done = p->done;
    audit_list_init(&p->done);
    p->outstanding -= done.count;
    pthread_mutex_unlock(&p->mu);
    while (done.head != NULL) {
        struct entry *e = done.head;
        done.head = e->next;
        fn(e->call, e->recorded, arg);
        free(e);
    }
}

void gw_audit_port_close(struct gw_audit_port *p, long timeout_ms, gw_audit_done_fn fn, void *arg)
{
    if (p == NULL) {
        return;
    }
    int64_t deadline = audit_now_ms() + timeout_ms;
    for (;;) {
        gw_audit_port_drain(p, fn, arg);
        pthread_mutex_lock(&p->mu);
        bool waiting = p->outstanding > 0 && audit_now_ms() < deadline;
        if (waiting && p->done.head == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        }
        if (!waiting) {
            p->closed = true;
            pthread_mutex_unlock(&p->mu);
            break;
        }
        pthread_mutex_unlock(&p->mu);
    }
    gw_audit_port_drain(p, fn, arg);
}

/* ---- free --------------------------------------------------------------------------------- */

void audit_ports_free(struct gw_audit *a)
{
    for (size_t i = 0; i < a->port_count; i++) {
        struct entry *e = a->ports[i]->done.head;
        while (e != NULL) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
        pthread_mutex_destroy(&a->ports[i]->mu);
        pthread_cond_destroy(&a->ports[i]->cv);
        free(a->ports[i]);
    }
}
