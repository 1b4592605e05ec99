/*
 * sts: the refresher thread (sts.h). The answer of AssumeRole holds a SecretKey and a token: it
 * is received into secure memory (gw_buf_init_secure), and the two strings Jansson copies out of
 * it are wiped before the document is freed.
 */
#include "sts/sts.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access/access.h"
#include "core/buf.h"
#include "core/call.h"
#include "vault/vault.h"

#define TICK_SECONDS 1

struct gw_sts {
    struct gw_access *access;
    struct gw_sts_options opts;
    struct curl_slist *connect_to; /* opts' lists as libcurl takes them */
    struct curl_slist *resolve;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    bool woken;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct gw_buf *b = arg;
    size_t len = size * n;
    return gw_buf_append(b, p, len) == GW_OK ? len : 0;
}

/* Wipes a JSON string's bytes in place (Jansson's copy of a secret) before it is freed. */
static void wipe_string(json_t *s)
{
    if (json_is_string(s)) {
        sodium_memzero((void *)(uintptr_t)json_string_value(s), json_string_length(s));
    }
}

/*
 * One AssumeRole for role i of vault, and the install of its answer. GW_OK when installed;
 * otherwise why says what went wrong (nothing secret in it).
 */
static enum gw_err assume(struct gw_sts *sts, struct gw_vault *vault, size_t i,
                          const struct gw_vault_info *role, int64_t *expires_out, char *why,
                          size_t whylen)
{
    enum gw_err err = GW_ERR_INTERNAL;
    struct gw_buf auth, token, answer, header;
    struct curl_slist *headers = NULL;
    CURL *e = NULL;
    char *body = NULL;
    json_t *req_doc = NULL, *doc = NULL;
    char line[GW_CALL_AUTHORIZATION_MAX + 64];
    char errbuf[CURL_ERROR_SIZE] = "";
    gw_buf_init(&auth, GW_CALL_AUTHORIZATION_MAX);
    gw_buf_init_secure(&token, GW_VAULT_MAX_TOKEN + 1);
    gw_buf_init_secure(&answer, GW_STS_MAX_ANSWER);
    gw_buf_init_secure(&header, GW_VAULT_MAX_TOKEN + 32);

    req_doc = json_pack("{s:s,s:s,s:i}", "RoleArn", role->role_arn, "RoleSessionName",
                        role->session_name, "DurationSeconds", (int)role->duration);
    if (req_doc == NULL || (body = json_dumps(req_doc, JSON_COMPACT)) == NULL) {
        gw_say(why, whylen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    int64_t now = (int64_t)time(NULL);
    struct gw_tc3_request req = {
        .service = "sts",
        .host = GW_STS_HOST,
        .timestamp = now,
        .content_type = GW_CALL_CONTENT_TYPE,
        .payload = (const unsigned char *)body,
        .payload_len = strlen(body),
        .action = NULL,
    };
    if ((err = gw_vault_sign_token(vault, role->source, &req, &auth, &token)) != GW_OK) {
        gw_say(why, whylen, "cannot sign AssumeRole with credential %s: %s", role->source,
               err == GW_ERR_NOT_FOUND ? "no such credential" : gw_err_str(err));
        goto out;
    }
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    const char *fixed[][2] = {{"Content-Type", GW_CALL_CONTENT_TYPE},
                              {"X-TC-Action", "AssumeRole"},
                              {"X-TC-Version", GW_STS_VERSION},
                              {"X-TC-Timestamp", ts},
                              {"X-TC-Region", role->region},
                              {"Authorization", auth.data},
                              {"Expect", ""},
                              {"Accept", ""}};
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) {
        snprintf(line, sizeof line, "%s: %s", fixed[k][0], fixed[k][1]);
        struct curl_slist *next = curl_slist_append(headers, line);
        if (next == NULL) {
            err = GW_ERR_NOMEM;
            gw_say(why, whylen, "out of memory");
            goto out;
        }
        headers = next;
    }
    if (token.len > 0) {
        /* Built in secure memory; libcurl keeps its own copy for the transfer only. */
        struct curl_slist *next;
        if ((err = gw_buf_append_str(&header, "X-TC-Token: ")) != GW_OK ||
            (err = gw_buf_append(&header, token.data, token.len)) != GW_OK ||
            (next = curl_slist_append(headers, header.data)) == NULL) {
            gw_say(why, whylen, "out of memory");
            err = GW_ERR_NOMEM;
            goto out;
        }
        headers = next;
    }
    if ((e = curl_easy_init()) == NULL ||
        curl_easy_setopt(e, CURLOPT_URL, "https://" GW_STS_HOST "/") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, sts->opts.connect_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, sts->opts.timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
        (sts->opts.ca_file != NULL &&
         curl_easy_setopt(e, CURLOPT_CAINFO, sts->opts.ca_file) != CURLE_OK) ||
        (sts->connect_to != NULL &&
         curl_easy_setopt(e, CURLOPT_CONNECT_TO, sts->connect_to) != CURLE_OK) ||
        (sts->resolve != NULL && curl_easy_setopt(e, CURLOPT_RESOLVE, sts->resolve) != CURLE_OK)) {
        gw_say(why, whylen, "cannot set up libcurl");
        err = GW_ERR_INTERNAL;
        goto out;
    }
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        gw_say(why, whylen, "STS unreachable: %s",
               errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
        err = GW_ERR_IO;
        goto out;
    }
    json_error_t jerr;
    doc = json_loadb(answer.data != NULL ? answer.data : "", answer.len, 0, &jerr);
    json_t *resp = json_object_get(doc, "Response");
    json_t *error = json_object_get(resp, "Error");
    if (error != NULL) {
        gw_say(why, whylen, "STS refused AssumeRole: %.64s: %.160s",
               json_string_value(json_object_get(error, "Code")) != NULL
                   ? json_string_value(json_object_get(error, "Code"))
                   : "?",
               json_string_value(json_object_get(error, "Message")) != NULL
                   ? json_string_value(json_object_get(error, "Message"))
                   : "");
        err = GW_ERR_CRYPTO;
        goto out;
    }
    json_t *creds = json_object_get(resp, "Credentials");
    json_t *id = json_object_get(creds, "TmpSecretId");
    json_t *key = json_object_get(creds, "TmpSecretKey");
    json_t *tok = json_object_get(creds, "Token");
    json_t *exp = json_object_get(resp, "ExpiredTime");
    if (status != 200 || !json_is_string(id) || !json_is_string(key) || !json_is_string(tok) ||
        !json_is_integer(exp)) {
        gw_say(why, whylen, "STS answered HTTP %ld without Credentials and ExpiredTime", status);
        err = GW_ERR_INVALID;
        goto out;
    }
    char msg[160];
    if ((err = gw_vault_role_install(vault, i, json_string_value(id), json_string_length(id),
                                     json_string_value(key), json_string_length(key),
                                     json_string_value(tok), json_string_length(tok),
                                     (int64_t)json_integer_value(exp), msg, sizeof msg)) != GW_OK) {
        gw_say(why, whylen, "STS's keys not installed: %s", msg);
        goto out;
    }
    *expires_out = (int64_t)json_integer_value(exp);
    err = GW_OK;
out:
    if (doc != NULL) {
        json_t *creds_doc = json_object_get(json_object_get(doc, "Response"), "Credentials");
        wipe_string(json_object_get(creds_doc, "TmpSecretKey"));
        wipe_string(json_object_get(creds_doc, "Token"));
    }
    json_decref(doc);
    curl_easy_cleanup(e);
    curl_slist_free_all(headers); /* libcurl's copies of Authorization and X-TC-Token */
    sodium_memzero(line, sizeof line);
    json_decref(req_doc);
    free(body);
    gw_buf_free(&auth);
    gw_buf_free(&token);  /* secure: wiped */
    gw_buf_free(&answer); /* secure: wiped */
    gw_buf_free(&header);
    return err;
}

/* Refreshes the roles of the current snapshot that are due. */
static void turn(struct gw_sts *sts)
{
    struct gw_access_snapshot *snap = gw_access_current(sts->access);
    struct gw_vault *vault = gw_access_vault(snap);
    size_t n = gw_vault_role_count(vault);
    for (size_t i = 0; i < n; i++) {
        int64_t now = (int64_t)time(NULL);
        struct gw_vault_info role;
        if (gw_vault_role_due(vault, i) > now || gw_vault_role_get(vault, i, &role) != GW_OK) {
            continue;
        }
        char why[384] = "";
        int64_t expires = 0;
        enum gw_err err = assume(sts, vault, i, &role, &expires, why, sizeof why);
        if (err == GW_OK) {
            struct gw_vault_info now_info;
            if (gw_vault_role_get(vault, i, &now_info) == GW_OK) {
                fprintf(stderr,
                        "level=info event=sts_refresh role=%s result=ok secret_id_tail=%s "
                        "expires=%lld lifetime_s=%lld\n",
                        role.name, now_info.id_tail, (long long)expires,
                        (long long)(expires - now));
            }
        } else {
            gw_vault_role_failed(vault, i, why);
            int64_t left = role.expires - now;
            if (role.expires != 0 && left > GW_VAULT_EXPIRY_MARGIN) {
                fprintf(stderr,
                        "level=warning event=sts_refresh role=%s result=failed detail=\"%s\" "
                        "note=\"current keys used until they expire\" keys_valid_s=%lld\n",
                        role.name, why, (long long)left);
            } else {
                fprintf(stderr,
                        "level=error event=sts_refresh role=%s result=failed detail=\"%s\" "
                        "note=\"no valid keys: calls with this role are refused\"\n",
                        role.name, why);
            }
        }
        fflush(stderr);
    }
    gw_vault_roles_reap(vault);
    gw_access_release(snap);
}

static void *run(void *arg)
{
    struct gw_sts *sts = arg;
    pthread_mutex_lock(&sts->lock);
    while (!sts->stopping) {
        pthread_mutex_unlock(&sts->lock);
        turn(sts);
        pthread_mutex_lock(&sts->lock);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += TICK_SECONDS;
        while (!sts->stopping && !sts->woken) {
            if (pthread_cond_timedwait(&sts->cond, &sts->lock, &until) != 0) {
                break;
            }
        }
        sts->woken = false;
    }
    pthread_mutex_unlock(&sts->lock);
    return NULL;
}

static bool copy_list(char *const *in, struct curl_slist **out)
{
    for (size_t i = 0; in != NULL && in[i] != NULL; i++) {
        struct curl_slist *next = curl_slist_append(*out, in[i]);
        if (next == NULL) {
            return false;
        }
        *out = next;
    }
    return true;
}

static void sts_free(struct gw_sts *sts)
{
    curl_slist_free_all(sts->connect_to);
    curl_slist_free_all(sts->resolve);
    free(sts);
}

enum gw_err gw_sts_start(struct gw_access *access, const struct gw_sts_options *opts,
                         struct gw_sts **out, char *msg, size_t msglen)
{
    pthread_condattr_t attr;
    struct gw_sts *sts = calloc(1, sizeof *sts);
    if (sts == NULL || access == NULL || opts == NULL || out == NULL) {
        free(sts);
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    sts->access = access;
    sts->opts = *opts;
    if (!copy_list(opts->connect_to, &sts->connect_to) ||
        !copy_list(opts->resolve, &sts->resolve)) {
        sts_free(sts);
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    if (pthread_mutex_init(&sts->lock, NULL) != 0 || pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&sts->cond, &attr) != 0) {
        sts_free(sts);
        gw_say(msg, msglen, "cannot set up the STS refresher");
        return GW_ERR_INTERNAL;
    }
    pthread_condattr_destroy(&attr);
    if (pthread_create(&sts->thread, NULL, run, sts) != 0) {
        pthread_cond_destroy(&sts->cond);
        pthread_mutex_destroy(&sts->lock);
        sts_free(sts);
        gw_say(msg, msglen, "cannot start the STS refresher thread");
        return GW_ERR_INTERNAL;
    }
    *out = sts;
    return GW_OK;
}

void gw_sts_wake(struct gw_sts *sts)
{
    if (sts == NULL) {
        return;
    }
    pthread_mutex_lock(&sts->lock);
    sts->woken = true;
    pthread_cond_signal(&sts->cond);
    pthread_mutex_unlock(&sts->lock);
}

bool gw_sts_ready(struct gw_sts *sts, char *why, size_t whylen)
{
    if (sts == NULL) {
        return true;
    }
    struct gw_access_snapshot *snap = gw_access_current(sts->access);
    bool ok = gw_vault_roles_ok(gw_access_vault(snap), why, whylen);
    gw_access_release(snap);
    return ok;
}

void gw_sts_stop(struct gw_sts *sts)
{
    if (sts == NULL) {
        return;
    }
    pthread_mutex_lock(&sts->lock);
    sts->stopping = true;
    pthread_cond_signal(&sts->cond);
    pthread_mutex_unlock(&sts->lock);
    pthread_join(sts->thread, NULL);
    pthread_cond_destroy(&sts->cond);
    pthread_mutex_destroy(&sts->lock);
    sts_free(sts);
}
