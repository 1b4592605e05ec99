#include "core/buf.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"

void gw_buf_init(struct gw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->budget = NULL;
    b->strict = false;
    b->secure = false;
}

void gw_buf_init_secure(struct gw_buf *b, size_t max)
{
    gw_buf_init(b, max);
    b->secure = true;
}

void gw_buf_charge(struct gw_buf *b, struct gw_budget *budget, bool strict)
{
    b->budget = budget;
    b->strict = strict;
}

/* Empties the buffer without freeing: gives its charge back and keeps max and budget. */
static void forget(struct gw_buf *b)
{
    if (b->budget != NULL && b->cap > 0) {
        gw_budget_give(b->budget, b->cap);
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

char *gw_buf_steal(struct gw_buf *b, size_t *len, size_t *charged)
{
    if (b->secure) {
        *len = 0;
        *charged = 0;
        return NULL;
    }
    char *data = b->data;
    *len = b->len;
    *charged = b->budget != NULL ? b->cap : 0;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return data;
}

/* Grows the memory to exactly cap bytes (more than b->cap), charging the budget. */
static enum gw_err grow_to(struct gw_buf *b, size_t cap)
{
    if (b->budget != NULL) {
        if (!b->strict) {
            gw_budget_overdraw(b->budget, cap - b->cap);
        } else if (!gw_budget_take(b->budget, cap - b->cap)) {
            return GW_ERR_BUDGET;
        }
    }
    char *p;
    if (b->secure) {
        /* A new region and a copy: realloc would leave the old bytes behind, unwiped. */
        if ((p = sodium_malloc(cap)) != NULL && b->data != NULL) {
            memcpy(p, b->data, b->len + 1);
            sodium_free(b->data);
        }
    } else {
        p = realloc(b->data, cap);
    }
    if (p == NULL) {
        if (b->budget != NULL) {
            gw_budget_give(b->budget, cap - b->cap);
        }
        return GW_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return GW_OK;
}

static enum gw_err reserve(struct gw_buf *b, size_t n)
{
    if (n > b->max - b->len) {
        return GW_ERR_TOO_LARGE;
    }
    size_t need = b->len + n + 1; /* room for the NUL */
    if (need <= b->cap) {
        return GW_OK;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    return grow_to(b, cap);
}

enum gw_err gw_buf_reserve(struct gw_buf *b, size_t n)
{
    if (n > b->max - b->len) {
        return GW_ERR_TOO_LARGE;
    }
    size_t need = b->len + n + 1;
    return need <= b->cap ? GW_OK : grow_to(b, need);
}

enum gw_err gw_buf_append(struct gw_buf *b, const void *p, size_t n)
{
    enum gw_err err;
    if ((err = reserve(b, n)) != GW_OK) {
        return err;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return GW_OK;
}

enum gw_err gw_buf_append_str(struct gw_buf *b, const char *s)
{
    return gw_buf_append(b, s, strlen(s));
}

enum gw_err gw_buf_printf(struct gw_buf *b, const char *fmt, ...)
{
    enum gw_err err;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return GW_ERR_INVALID;
    }
    if ((err = reserve(b, (size_t)n)) != GW_OK) {
        return err;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return GW_OK;
}

void gw_buf_reset(struct gw_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

void gw_buf_free(struct gw_buf *b)
{
    if (b->secure) {
        sodium_free(b->data); /* wipes */
    } else {
        free(b->data);
    }
    forget(b);
}

void gw_buf_free_wipe(struct gw_buf *b)
{
    if (b->data != NULL && !b->secure) {
        sodium_memzero(b->data, b->cap);
    }
    gw_buf_free(b);
}
