/*
 * tcgw-bench-floor: what the gateway's libraries cost before tcgw does anything, measured on this
 * machine with these builds of them. bench.py prints these figures beside tcgw's own.
 *
 *   floor: rss_kib=N anon_kib=N file_kib=N
 *       the resident memory of a process that loads the libraries tcgw links (libmicrohttpd,
 *       libcurl, OpenSSL, Jansson, libsodium, GnuTLS, hiredis), calls one function of each and
 *       initialises them as `tcgw serve` does at start (curl_global_init, sodium_init), and
 *       nothing else: the least an idle tcgw can be.
 *   floor: curl_easy_bytes=N ssl_ctx_bytes=N ssl_bytes=N
 *       heap bytes per curl_easy_init() (one per call in flight), per SSL_CTX_new() and per
 *       SSL_new() (libcurl 7.88 makes both for every upstream TLS connection), each the mean over
 *       COUNT objects made after a first one of each.
 */
#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <malloc.h>
#include <microhttpd.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT 200

/* A field of /proc/self/status in kB, or -1. */
static long status_kib(const char *field)
{
    char line[256];
    long value = -1;
    size_t len = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            value = strtol(line + len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static int load_and_initialise(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || sodium_init() < 0 ||
        gnutls_check_version(NULL) == NULL || MHD_get_version() == NULL) {
        return -1;
    }
    json_t *j = json_pack("{s:i}", "Limit", 1);
    redisReader *r = redisReaderCreate();
    if (j == NULL || r == NULL) {
        return -1;
    }
    json_decref(j);
    redisReaderFree(r);
    return 0;
}

int main(void)
{
    int rc = 1;
    void *easy[COUNT] = {0};
    SSL_CTX *ctx[COUNT] = {0};
    SSL *ssl[COUNT] = {0};
    if (load_and_initialise() != 0) {
        fprintf(stderr, "tcgw-bench-floor: a library failed to initialise\n");
        return 1;
    }
    printf("floor: rss_kib=%ld anon_kib=%ld file_kib=%ld\n", status_kib("VmRSS"),
           status_kib("RssAnon"), status_kib("RssFile"));

    /* One of each first: what a library sets up once is not counted per object. */
    curl_easy_cleanup(curl_easy_init());
    SSL_CTX *first = SSL_CTX_new(TLS_client_method());
    SSL_free(first != NULL ? SSL_new(first) : NULL);
    SSL_CTX_free(first);

    size_t before = heap_in_use();
    for (int i = 0; i < COUNT; i++) {
        if ((easy[i] = curl_easy_init()) == NULL) {
            goto out;
        }
    }
    size_t easy_bytes = (heap_in_use() - before) / COUNT;
    before = heap_in_use();
    for (int i = 0; i < COUNT; i++) {
        if ((ctx[i] = SSL_CTX_new(TLS_client_method())) == NULL) {
            goto out;
        }
    }
    size_t ctx_bytes = (heap_in_use() - before) / COUNT;
    before = heap_in_use();
    for (int i = 0; i < COUNT; i++) {
        if ((ssl[i] = SSL_new(ctx[0])) == NULL) {
            goto out;
        }
    }
    size_t ssl_bytes = (heap_in_use() - before) / COUNT;
    printf("floor: curl_easy_bytes=%zu ssl_ctx_bytes=%zu ssl_bytes=%zu\n", easy_bytes, ctx_bytes,
           ssl_bytes);
    rc = 0;
out:
    if (rc != 0) {
        fprintf(stderr, "tcgw-bench-floor: out of memory\n");
    }
    for (int i = 0; i < COUNT; i++) {
        SSL_free(ssl[i]);
        SSL_CTX_free(ctx[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_global_cleanup();
    return rc;
}
