/* sts: AssumeRole and the temporary keys it issued (sts.h). */
#include "sts.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define ID_PREFIX "AKIDtmp"
#define TOKEN_LEN 96

struct issued {
    char id[48];
    char key[SIM_STS_KEY_MAX];
    char token[TOKEN_LEN + 1];
    int64_t expires;
};

struct sim_sts {
    pthread_mutex_t lock;
    bool refusing;
    struct issued *keys;
    size_t n;
};

enum sim_err sim_sts_new(struct sim_sts **out)
{
    struct sim_sts *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SIM_ENOMEM;
    }
    s->keys = calloc(SIM_STS_MAX_ISSUED, sizeof(*s->keys));
    if (s->keys == NULL || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s->keys);
        free(s);
        return SIM_ENOMEM;
    }
    *out = s;
    return SIM_OK;
}

void sim_sts_free(struct sim_sts *s)
{
    if (s == NULL) {
        return;
    }
    OPENSSL_cleanse(s->keys, SIM_STS_MAX_ISSUED * sizeof(*s->keys));
    free(s->keys);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

bool sim_sts_control(struct sim_sts *s, const char *method, const char *url)
{
    bool refuse = strcmp(url, "/_sim/sts/refuse") == 0;
    if (strcmp(method, "GET") != 0 || (!refuse && strcmp(url, "/_sim/sts/accept") != 0)) {
        return false;
    }
    pthread_mutex_lock(&s->lock);
    s->refusing = refuse;
    pthread_mutex_unlock(&s->lock);
    return true;
}

bool sim_sts_host(const char *host)
{
    return host != NULL && strncmp(host, SIM_STS_HOST_PREFIX, strlen(SIM_STS_HOST_PREFIX)) == 0;
}

static bool random_hex(char *out, size_t nchars)
{
    unsigned char b[64];
    size_t nbytes = (nchars + 1) / 2;
    if (nbytes > sizeof(b) || RAND_bytes(b, (int)nbytes) != 1) {
        return false;
    }
    sim_hex(b, nbytes, out); /* writes 2 * nbytes + NUL */
    out[nchars] = '\0';
    return true;
}

/* Drops expired keys (with the lock held). */
static void sweep(struct sim_sts *s, int64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->keys[i].expires > now) {
            s->keys[kept++] = s->keys[i];
        }
    }
    OPENSSL_cleanse(s->keys + kept, (s->n - kept) * sizeof(*s->keys));
    s->n = kept;
}

enum sim_err sim_sts_call(struct sim_sts *s, const char *action, const json_t *params, int64_t now,
                          json_t *resp, struct sim_fault *f)
{
    struct issued k;
    char expiration[32];
    struct tm tm;
    time_t t;
    bool refusing;
    json_int_t duration = 7200;

    if (strcmp(action, "AssumeRole") != 0) {
        return sim_fault_set(f, "InvalidAction",
                             "sts " SIM_STS_VERSION
                             " has no action \"%.64s\" (or the simulator does not implement it)",
                             action);
    }
    const json_t *arn = json_object_get(params, "RoleArn");
    const json_t *session = json_object_get(params, "RoleSessionName");
    const json_t *dur = json_object_get(params, "DurationSeconds");
    if (!json_is_string(arn) || json_string_length(arn) == 0) {
        return sim_fault_set(f, "MissingParameter", "RoleArn is required (a string)");
    }
    if (!json_is_string(session) || json_string_length(session) < 2) {
        return sim_fault_set(f, "MissingParameter",
                             "RoleSessionName is required (a string of 2 to 128 characters)");
    }
    if (dur != NULL) {
        if (!json_is_integer(dur) || json_integer_value(dur) < SIM_STS_MIN_DURATION ||
            json_integer_value(dur) > SIM_STS_MAX_DURATION) {
            return sim_fault_set(f, "InvalidParameterValue",
                                 "DurationSeconds must be an integer from %d to %d",
                                 SIM_STS_MIN_DURATION, SIM_STS_MAX_DURATION);
        }
        duration = json_integer_value(dur);
    }
    pthread_mutex_lock(&s->lock);
    refusing = s->refusing;
    pthread_mutex_unlock(&s->lock);
    if (refusing) {
        return sim_fault_set(f, "InternalError",
                             "the simulator's STS is switched off (/_sim/sts/refuse)");
    }
    memset(&k, 0, sizeof(k));
    memcpy(k.id, ID_PREFIX, strlen(ID_PREFIX));
    if (!random_hex(k.id + strlen(ID_PREFIX), 24) || !random_hex(k.key, 40) ||
        !random_hex(k.token, TOKEN_LEN)) {
        return sim_fault_set(f, "InternalError", "the simulator has no random bytes");
    }
    k.expires = now + (int64_t)duration;
    t = (time_t)k.expires;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(expiration, sizeof(expiration), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        return sim_fault_set(f, "InternalError", "the simulator has no clock");
    }
    pthread_mutex_lock(&s->lock);
    if (s->n == SIM_STS_MAX_ISSUED) {
        sweep(s, now);
    }
    bool full = s->n == SIM_STS_MAX_ISSUED;
    if (!full) {
        s->keys[s->n++] = k;
    }
    pthread_mutex_unlock(&s->lock);
    if (full) {
        OPENSSL_cleanse(&k, sizeof(k));
        return sim_fault_set(f, "LimitExceeded", "the simulator issued too many keys");
    }
    json_t *creds =
        json_pack("{s:s,s:s,s:s}", "Token", k.token, "TmpSecretId", k.id, "TmpSecretKey", k.key);
    OPENSSL_cleanse(&k, sizeof(k));
    if (creds == NULL || json_object_set_new(resp, "Credentials", creds) != 0 ||
        json_object_set_new(resp, "ExpiredTime", json_integer((json_int_t)t)) != 0 ||
        json_object_set_new(resp, "Expiration", json_string(expiration)) != 0) {
        return SIM_ENOMEM;
    }
    return SIM_OK;
}

enum sim_err sim_sts_lookup(struct sim_sts *s, const char *secret_id, const char *token,
                            int64_t now, char *key, size_t key_cap, bool *issued,
                            struct sim_fault *f)
{
    enum sim_err err = SIM_OK;
    *issued = false;
    if (s == NULL || strncmp(secret_id, ID_PREFIX, strlen(ID_PREFIX)) != 0) {
        return SIM_OK;
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        const struct issued *k = &s->keys[i];
        if (strcmp(k->id, secret_id) != 0) {
            continue;
        }
        *issued = true;
        if (token == NULL || token[0] == '\0') {
            err = sim_fault_set(f, "AuthFailure.TokenFailure",
                                "temporary credentials need their token in X-TC-Token");
        } else if (strlen(token) != TOKEN_LEN || CRYPTO_memcmp(token, k->token, TOKEN_LEN) != 0) {
            err = sim_fault_set(f, "AuthFailure.TokenFailure",
                                "X-TC-Token is not the token issued with this SecretId");
        } else if (now >= k->expires) {
            err = sim_fault_set(f, "AuthFailure.TokenFailure",
                                "the temporary credentials expired %lld seconds ago",
                                (long long)(now - k->expires));
        } else if (strlen(k->key) + 1 > key_cap) {
            err = sim_fault_set(f, "InternalError", "key too long");
        } else {
            memcpy(key, k->key, strlen(k->key) + 1);
        }
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}
