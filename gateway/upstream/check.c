/*
 * Start-up checks of the upstream options: a typo in ca_file, connect_to or resolve would otherwise
 * start fine and fail every call, and libcurl silently skips some malformed entries.
 */
#include "upstream/upstream_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ca_file: a regular file from which OpenSSL loads at least one certificate, as curl will. */
static enum gw_err check_ca_file(const char *path, char *msg, size_t msglen)
{
    enum gw_err err = GW_ERR_INVALID;
    struct stat st;
    BIO *bio = NULL;
    STACK_OF(X509_INFO) *infos = NULL;
    int certs = 0;
    if (stat(path, &st) != 0) {
        snprintf(msg, msglen, "upstream.ca_file \"%s\": %s; name the PEM file of CA certificates",
                 path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(msg, msglen,
                 "upstream.ca_file \"%s\" is not a regular file: name a PEM file of CA "
                 "certificates",
                 path);
        goto out;
    }
    if ((bio = BIO_new_file(path, "r")) == NULL) {
        snprintf(msg, msglen, "upstream.ca_file \"%s\" cannot be read: %s", path, strerror(errno));
        goto out;
    }
    /* The loader curl's OpenSSL backend uses; "" as the pass phrase, so it never prompts. */
    infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, "");
    for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
        if (sk_X509_INFO_value(infos, i)->x509 != NULL) {
            certs++;
        }
    }
    if (certs == 0) {
        const char *reason = ERR_reason_error_string(ERR_peek_last_error());
        snprintf(msg, msglen,
                 "upstream.ca_file \"%s\" holds no certificate OpenSSL can load%s%s%s: it must "
                 "be PEM (-----BEGIN CERTIFICATE-----)",
                 path, reason != NULL ? " (" : "", reason != NULL ? reason : "",
                 reason != NULL ? ")" : "");
        goto out;
    }
    err = GW_OK;
out:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    ERR_clear_error();
    return err;
}

/* A field of an override entry: the n bytes at p. */
struct field {
    const char *p;
    size_t n;
};

/*
 * Splits s at ':' into at most max fields, keeping a [bracketed] IPv6 address whole. Returns the
 * number of fields, max + 1 when there are more, or 0 when a bracket does not close.
 */
static size_t split_fields(const char *s, struct field *f, size_t max)
{
    for (size_t i = 0;; i++) {
        const char *end;
        if (*s == '[') {
            end = strchr(s, ']');
            if (end == NULL || (end[1] != ':' && end[1] != '\0')) {
                return 0;
            }
            end++;
        } else {
            end = strchr(s, ':');
            end = end != NULL ? end : s + strlen(s);
        }
        if (i == max) {
            return max + 1;
        }
        f[i] = (struct field){.p = s, .n = (size_t)(end - s)};
        if (*end == '\0') {
            return i + 1;
        }
        s = end + 1;
    }
}

static bool is_port(struct field f)
{
    unsigned long v = 0;
    if (f.n == 0 || f.n > 5) {
        return false;
    }
    for (size_t i = 0; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned long)(f.p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* A numeric IPv4 or IPv6 address, optionally in [brackets]. */
static bool is_ip(struct field f)
{
    char text[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];
    if (f.n >= 2 && f.p[0] == '[' && f.p[f.n - 1] == ']') {
        f.p++;
        f.n -= 2;
    }
    if (f.n == 0 || f.n >= sizeof text) {
        return false;
    }
    memcpy(text, f.p, f.n);
    text[f.n] = '\0';
    return inet_pton(AF_INET, text, addr) == 1 || inet_pton(AF_INET6, text, addr) == 1;
}

/* A DNS name or dotted IPv4 address: letters, digits, '-', '_' and '.'. */
static bool is_host_name(struct field f)
{
    if (f.n == 0 || f.n > 253) {
        return false;
    }
    for (size_t i = 0; i < f.n; i++) {
        char c = f.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

#define CONNECT_TO_FORM                                                                            \
    "expected HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT, e.g. "                                    \
    "\"gaap.tencentcloudapi.com:443:127.0.0.1:9443\""
#define RESOLVE_FORM                                                                               \
    "expected [+]HOST:PORT:ADDRESS[,ADDRESS] with numeric IP addresses, e.g. "                     \
    "\"gaap.tencentcloudapi.com:443:192.0.2.10\""

/* As CURLOPT_CONNECT_TO documents it: any field may be empty (any host or port, or unchanged). */
static enum gw_err check_connect_to(const char *entry, char *msg, size_t msglen)
{
    struct field f[4];
    size_t n = split_fields(entry, f, 4);
    const char *why = NULL;
    if (n != 4) {
        why = n == 0 ? "a '[' has no matching ']'" : "it needs exactly four ':'-separated fields";
    } else if ((f[1].n > 0 && !is_port(f[1])) || (f[3].n > 0 && !is_port(f[3]))) {
        why = "a port is not a number from 1 to 65535";
    } else {
        for (size_t i = 0; i < 4 && why == NULL; i += 2) {
            if (f[i].n > 0 && !is_host_name(f[i]) && !(f[i].p[0] == '[' && is_ip(f[i]))) {
                why = "a host is neither a name, an IPv4 address nor an [IPv6] address";
            }
        }
    }
    if (why != NULL) {
        snprintf(msg, msglen, "upstream.connect_to entry \"%.200s\": %s; " CONNECT_TO_FORM, entry,
                 why);
        return GW_ERR_INVALID;
    }
    return GW_OK;
}

/* As CURLOPT_RESOLVE documents it; removals ("-HOST:PORT") mean nothing at start. */
static enum gw_err check_resolve(const char *entry, char *msg, size_t msglen)
{
    const char *why = NULL;
    const char *p = entry[0] == '+' ? entry + 1 : entry;
    const char *colon1 = strchr(p, ':');
    const char *colon2 = colon1 != NULL ? strchr(colon1 + 1, ':') : NULL;
    if (entry[0] == '-') {
        why = "a removal (\"-HOST:PORT\") has no place in the configuration";
    } else if (colon2 == NULL) {
        why = "it needs HOST, PORT and at least one ADDRESS";
    } else {
        struct field host = {.p = p, .n = (size_t)(colon1 - p)};
        struct field port = {.p = colon1 + 1, .n = (size_t)(colon2 - colon1 - 1)};
        if (!(host.n == 1 && host.p[0] == '*') && !is_host_name(host)) {
            why = "HOST is not a host name (or *)";
        } else if (!is_port(port)) {
            why = "PORT is not a number from 1 to 65535";
        }
        for (const char *a = colon2 + 1; why == NULL;) {
            const char *comma = strchr(a, ',');
            struct field addr = {.p = a, .n = comma != NULL ? (size_t)(comma - a) : strlen(a)};
            if (!is_ip(addr)) {
                why = "an ADDRESS is not a numeric IPv4 or IPv6 address";
            }
            if (comma == NULL) {
                break;
            }
            a = comma + 1;
        }
    }
    if (why != NULL) {
        snprintf(msg, msglen, "upstream.resolve entry \"%.200s\": %s; " RESOLVE_FORM, entry, why);
        return GW_ERR_INVALID;
    }
    return GW_OK;
}

enum gw_err gw_upstream_check(const struct gw_upstream_options *opts, char *msg, size_t msglen)
{
    enum gw_err err = GW_OK;
    if (opts->ca_file != NULL && (err = check_ca_file(opts->ca_file, msg, msglen)) != GW_OK) {
        goto out;
    }
    for (size_t i = 0; opts->connect_to != NULL && opts->connect_to[i] != NULL; i++) {
        if ((err = check_connect_to(opts->connect_to[i], msg, msglen)) != GW_OK) {
            goto out;
        }
    }
    for (size_t i = 0; opts->resolve != NULL && opts->resolve[i] != NULL; i++) {
        if ((err = check_resolve(opts->resolve[i], msg, msglen)) != GW_OK) {
            goto out;
        }
    }
out:
    /* The entry quoted back goes to a terminal or a log: one plain line. */
    for (char *p = msg; err != GW_OK && msglen > 0 && *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    return err;
}
