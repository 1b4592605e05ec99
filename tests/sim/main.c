/*
 * tcgw-sim: a GAAP 2018-05-29 upstream double for the gateway's tests and demo. It serves HTTPS,
 * verifies TC3-HMAC-SHA256 signatures with its own code, answers in Tencent's format from a
 * fixture, and records every request it receives as a JSON line.
 *
 * usage: tcgw-sim --cert FILE --key FILE --fixture FILE [--fixture FILE ...]
 *                 --credentials FILE --records FILE
 *                 [--port N] [--listen ADDR] [--rate-limit N] [--max-skew SECONDS]
 *                 [--fault close-after-read=N]
 * Prints "listening on <addr>:<port>" once ready; exits 0 on SIGTERM or SIGINT.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common.h"
#include "credentials.h"
#include "fixture.h"
#include "gaap.h"
#include "ratelimit.h"
#include "records.h"
#include "server.h"
#include "sts.h"

#define EXIT_USAGE 2
#define MAX_SKEW_LIMIT 31536000
#define MAX_FAULT_COUNT 1000000
#define FAULT_CLOSE_AFTER_READ "close-after-read="

struct options {
    const char *cert;
    const char *key;
    const char *fixtures[SIM_FIXTURE_MAX_FILES];
    size_t nfixtures;
    const char *credentials;
    const char *records;
    const char *listen;
    uint64_t port;
    uint64_t rate_limit;
    uint64_t max_skew;
    uint64_t close_after_read;
};

static void usage(FILE *out)
{
    (void)fprintf(
        out, "usage: tcgw-sim --cert FILE --key FILE --fixture FILE [--fixture FILE ...]\n"
             "                --credentials FILE --records FILE [--port N] [--listen ADDR]\n"
             "                [--rate-limit N] [--max-skew SECONDS]\n"
             "                [--fault close-after-read=N]\n"
             "  --port N          TCP port; 0 (default) picks a free one\n"
             "  --listen ADDR     numeric address to bind (default 127.0.0.1)\n"
             "  --cert, --key     PEM server certificate and private key (key mode 0600)\n"
             "  --fixture FILE    proxies, access regions, accounts (tests/sim/fixture.json);\n"
             "                    more --fixture files are laid over the first in order\n"
             "  --credentials F   JSON object {\"SecretId\": \"SecretKey\" or {\"SecretKey\": ..,\n"
             "                    \"Account\", \"Actions\", \"ProxyIds\", \"AuthFailure\"}}\n"
             "  --records FILE    every request received is appended as one JSON line\n"
             "  --rate-limit N    requests per action per second (default 20, 0 = off)\n"
             "  --max-skew S      accepted |now - X-TC-Timestamp| (default 300)\n"
             "  --fault close-after-read=N\n"
             "                    read the Nth request on each connection in full, record\n"
             "                    it, then close without answering (N from 1)\n");
}

static bool number_arg(const char *name, const char *text, uint64_t max, uint64_t *out)
{
    if (!sim_parse_u64(text, strlen(text), out) || *out > max) {
        (void)fprintf(stderr, "tcgw-sim: %s must be an integer from 0 to %llu\n", name,
                      (unsigned long long)max);
        return false;
    }
    return true;
}

/* Returns 0 when parsed, EXIT_USAGE otherwise (after printing why). */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
                                             {"cert", required_argument, NULL, 'c'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"fixture", required_argument, NULL, 'f'},
                                             {"credentials", required_argument, NULL, 'C'},
                                             {"records", required_argument, NULL, 'r'},
                                             {"rate-limit", required_argument, NULL, 'l'},
                                             {"max-skew", required_argument, NULL, 's'},
                                             {"listen", required_argument, NULL, 'L'},
                                             {"fault", required_argument, NULL, 'F'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;

    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1";
    o->rate_limit = 20;
    o->max_skew = 300;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (!number_arg("--port", optarg, 65535, &o->port)) {
                return EXIT_USAGE;
            }
            break;
        case 'c':
            o->cert = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'f':
            if (o->nfixtures == SIM_FIXTURE_MAX_FILES) {
                (void)fprintf(stderr, "tcgw-sim: at most %d --fixture files\n",
                              SIM_FIXTURE_MAX_FILES);
                return EXIT_USAGE;
            }
            o->fixtures[o->nfixtures++] = optarg;
            break;
        case 'C':
            o->credentials = optarg;
            break;
        case 'r':
            o->records = optarg;
            break;
        case 'l':
            if (!number_arg("--rate-limit", optarg, SIM_RATELIMIT_MAX, &o->rate_limit)) {
                return EXIT_USAGE;
            }
            break;
        case 's':
            if (!number_arg("--max-skew", optarg, MAX_SKEW_LIMIT, &o->max_skew)) {
                return EXIT_USAGE;
            }
            break;
        case 'L':
            o->listen = optarg;
            break;
        case 'F':
            /* One fault mode so far; the NAME=VALUE form leaves room for more. */
            if (strncmp(optarg, FAULT_CLOSE_AFTER_READ, strlen(FAULT_CLOSE_AFTER_READ)) != 0) {
                (void)fprintf(stderr, "tcgw-sim: --fault must be close-after-read=N\n");
                return EXIT_USAGE;
            }
            if (!number_arg("--fault close-after-read", optarg + strlen(FAULT_CLOSE_AFTER_READ),
                            MAX_FAULT_COUNT, &o->close_after_read)) {
                return EXIT_USAGE;
            }
            if (o->close_after_read == 0) {
                (void)fprintf(stderr, "tcgw-sim: --fault close-after-read=N needs N >= 1\n");
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || o->cert == NULL || o->key == NULL || o->nfixtures == 0 ||
        o->credentials == NULL || o->records == NULL) {
        (void)fprintf(stderr, "tcgw-sim: --cert, --key, --fixture, --credentials and --records "
                              "are required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    return 0;
}

/* Reads a PEM file; refuses a private key readable by group or others, as ssh does. */
static char *load_pem(const char *path, bool secret)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;

    if (secret && stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
        (void)fprintf(stderr, "tcgw-sim: %s is readable by group or others: chmod 600 it\n", path);
        return NULL;
    }
    if (sim_read_file(path, SIM_MAX_FILE_BYTES, &data, &len) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: cannot read %s\n", path);
        return NULL;
    }
    return data;
}

static void free_secret(char *p)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, strlen(p));
        free(p);
    }
}

int main(int argc, char **argv)
{
    int rc = 1;
    struct options o;
    struct sim_server_config cfg;
    struct sim_gaap *gaap = NULL;
    struct sim_records *records = NULL;
    struct sim_ratelimit *limits = NULL;
    struct sim_server *server = NULL;
    struct sim_credentials *creds = NULL;
    json_t *fixture = NULL;
    const char *unknown;
    struct sim_sts *sts = NULL;
    char *cert = NULL;
    char *key = NULL;
    char errbuf[512];
    uint16_t port = 0;
    sigset_t stop;
    int sig = 0;

    if ((rc = parse_args(argc, argv, &o)) != 0) {
        return rc;
    }
    rc = 1;
    /* Block the stop signals before MHD starts its threads so they inherit the mask and only
     * sigwait below receives them; ignore SIGPIPE from peers that hang up mid-answer. */
    (void)sigemptyset(&stop);
    (void)sigaddset(&stop, SIGTERM);
    (void)sigaddset(&stop, SIGINT);
    (void)pthread_sigmask(SIG_BLOCK, &stop, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    if ((cert = load_pem(o.cert, false)) == NULL || (key = load_pem(o.key, true)) == NULL) {
        goto out;
    }
    if (sim_credentials_load(o.credentials, &creds, errbuf, sizeof(errbuf)) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: credentials: %s\n", errbuf);
        goto out;
    }
    if (sim_fixture_load(o.fixtures, o.nfixtures, &fixture, errbuf, sizeof(errbuf)) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: fixture: %s\n", errbuf);
        goto out;
    }
    unknown = sim_credentials_unknown_account(creds, json_object_get(fixture, "Accounts"));
    if (unknown != NULL) {
        (void)fprintf(stderr,
                      "tcgw-sim: credentials: the account \"%.64s\" is not in the fixture's "
                      "\"Accounts\"\n",
                      unknown);
        goto out;
    }
    if (sim_gaap_new(fixture, &gaap) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: out of memory\n");
        goto out;
    }
    if (sim_records_open(o.records, &records) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: cannot open %s for appending\n", o.records);
        goto out;
    }
    if (sim_ratelimit_new(sim_gaap_action_count(), (uint32_t)o.rate_limit, &limits) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: out of memory\n");
        goto out;
    }
    if (sim_sts_new(&sts) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: out of memory\n");
        goto out;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.sts = sts;
    cfg.listen_addr = o.listen;
    cfg.port = (uint16_t)o.port;
    cfg.cert_pem = cert;
    cfg.key_pem = key;
    cfg.max_skew = (int64_t)o.max_skew;
    cfg.gaap = gaap;
    cfg.credentials = creds;
    cfg.records = records;
    cfg.limits = limits;
    cfg.close_after_read = (unsigned)o.close_after_read;
    if (sim_server_start(&cfg, &server, &port, errbuf, sizeof(errbuf)) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: %s\n", errbuf);
        goto out;
    }
    if (strchr(o.listen, ':') != NULL) {
        (void)printf("listening on [%s]:%u\n", o.listen, (unsigned)port);
    } else {
        (void)printf("listening on %s:%u\n", o.listen, (unsigned)port);
    }
    (void)fflush(stdout);

    while (sigwait(&stop, &sig) != 0) {
    }
    rc = 0;
out:
    sim_server_stop(server);
    sim_sts_free(sts);
    sim_ratelimit_free(limits);
    sim_records_close(records);
    sim_gaap_free(gaap);
    sim_credentials_free(creds);
    json_decref(fixture);
    free_secret(key);
    free(cert);
    return rc;
}
