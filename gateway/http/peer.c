#include "http/peer.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509-ext.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <string.h>

/* Why a verification failed, most fundamental first: an untrusted certificate is untrusted
 * whatever its dates say. */
static const struct {
    unsigned status;
    const char *why;
} refusals[] = {
    {GNUTLS_CERT_SIGNER_NOT_FOUND,
     "the client certificate is not issued by a CA this listener trusts (client_ca_file)"},
    {GNUTLS_CERT_SIGNER_NOT_CA,
     "the client certificate is issued by a certificate that is not a CA"},
    {GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE,
     "the client certificate's chain breaks its CA's constraints"},
    {GNUTLS_CERT_REVOKED, "the client certificate is revoked"},
    {GNUTLS_CERT_EXPIRED, "the client certificate (or a certificate of its chain) has expired"},
    {GNUTLS_CERT_NOT_ACTIVATED,
     "the client certificate (or a certificate of its chain) is not yet valid"},
    {GNUTLS_CERT_SIGNATURE_FAILURE, "the client certificate's signature is not valid"},
    {GNUTLS_CERT_INSECURE_ALGORITHM, "the client certificate is signed with an insecure algorithm"},
    {GNUTLS_CERT_PURPOSE_MISMATCH,
     "the client certificate is not for client authentication (its extended key usage)"},
    {GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS,
     "the client certificate has a critical extension the gateway does not know"},
};

static const char no_certificate[] = "no client certificate was presented";
static const char not_verified[] = "the client certificate could not be verified";
static const char self_signed[] =
    "the client certificate is self-signed, not issued by a CA this listener trusts "
    "(client_ca_file)";

static bool printable(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return false; /* a NUL too: the name must be what a C string of it says */
        }
    }
    return true;
}

/* Copies a name of n bytes into name, or says why it cannot be one. */
static const char *take_name(const unsigned char *p, size_t n, char name[GW_PEER_NAME_MAX + 1])
{
    if (n == 0) {
        return "the client certificate's name is empty";
    }
    if (n > GW_PEER_NAME_MAX) {
        return "the client certificate's name is longer than 256 bytes";
    }
    if (!printable(p, n)) {
        return "the client certificate's name has control characters";
    }
    memcpy(name, p, n);
    name[n] = '\0';
    return NULL;
}

/* The first URI subject alternative name: NULL with name set, NULL with name "" when the
 * certificate has none, or why it is refused. */
static const char *uri_name(gnutls_x509_crt_t crt, char name[GW_PEER_NAME_MAX + 1])
{
    gnutls_datum_t ext = {NULL, 0};
    gnutls_subject_alt_names_t sans = NULL;
    const char *why = NULL;
    unsigned critical = 0;
    int ret =
        gnutls_x509_crt_get_extension_by_oid2(crt, GNUTLS_X509EXT_OID_SAN, 0, &ext, &critical);
    if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
        return NULL;
    }
    if (ret < 0 || gnutls_subject_alt_names_init(&sans) < 0 ||
        gnutls_x509_ext_import_subject_alt_names(&ext, sans, 0) < 0) {
        why = "the client certificate's subject alternative names cannot be read";
        goto out;
    }
    for (unsigned seq = 0;; seq++) {
        unsigned type = 0;
        gnutls_datum_t san = {NULL, 0};
        if (gnutls_subject_alt_names_get(sans, seq, &type, &san, NULL) < 0) {
            break; /* GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE: no URI among them */
        }
        if (type == GNUTLS_SAN_URI) {
            why = take_name(san.data, san.size, name);
            goto out;
        }
    }
out:
    gnutls_subject_alt_names_deinit(sans);
    gnutls_free(ext.data);
    return why;
}

/* The one subject common name. */
static const char *common_name(gnutls_x509_crt_t crt, char name[GW_PEER_NAME_MAX + 1])
{
    char buf[GW_PEER_NAME_MAX + 1];
    size_t size = sizeof buf;
    int ret = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size);
    if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
        return "the client certificate has neither a URI subject alternative name nor a "
               "common name";
    }
    if (ret == GNUTLS_E_SHORT_MEMORY_BUFFER) {
        return "the client certificate's name is longer than 256 bytes";
    }
    if (ret < 0 || size >= sizeof buf) {
        return "the client certificate's common name cannot be read";
    }
    char second[8];
    size_t second_size = sizeof second;
    ret =
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, second, &second_size);
    if (ret != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
        return "the client certificate has more than one common name: give it a URI subject "
               "alternative name";
    }
    return take_name((const unsigned char *)buf, size, name);
}

/* The name of a verified leaf certificate. */
static const char *leaf_name(const gnutls_datum_t *der, char name[GW_PEER_NAME_MAX + 1])
{
    gnutls_x509_crt_t crt = NULL;
    const char *why;
    if (gnutls_x509_crt_init(&crt) < 0) {
        return not_verified;
    }
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0) {
        why = not_verified;
        goto out;
    }
    if ((why = uri_name(crt, name)) != NULL || name[0] != '\0') {
        goto out;
    }
    why = common_name(crt, name);
out:
    gnutls_x509_crt_deinit(crt);
    return why;
}

/* Whether the leaf names itself as its issuer (for a clearer refusal than "untrusted CA"). */
static bool is_self_signed(const gnutls_datum_t *der)
{
    gnutls_x509_crt_t crt = NULL;
    bool self = false;
    if (gnutls_x509_crt_init(&crt) < 0) {
        return false;
    }
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0) {
        self = gnutls_x509_crt_check_issuer(crt, crt) != 0;
    }
    gnutls_x509_crt_deinit(crt);
    return self;
}

const char *gw_peer_verify(void *session, char name[GW_PEER_NAME_MAX + 1])
{
    gnutls_session_t s = session;
    unsigned count = 0;
    name[0] = '\0';
    if (s == NULL || gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509) {
        return no_certificate;
    }
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &count);
    if (chain == NULL || count == 0) {
        return no_certificate;
    }
    if (count > GW_PEER_MAX_CHAIN_CERTS) {
        return "the client certificate chain has more than 8 certificates";
    }
    size_t bytes = 0;
    for (unsigned i = 0; i < count; i++) {
        bytes += chain[i].size;
    }
    if (bytes > GW_PEER_MAX_CHAIN_BYTES) {
        return "the client certificate chain is larger than 65536 bytes";
    }
    /* The trust set is the session's credentials': libmicrohttpd loaded client_ca_file there. */
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
        .size = 0,
    };
    unsigned status = 0;
    if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) < 0) {
        return not_verified;
    }
    if (status != 0) {
        if ((status & GNUTLS_CERT_SIGNER_NOT_FOUND) != 0 && count == 1 &&
            is_self_signed(&chain[0])) {
            return self_signed;
        }
        for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
            if ((status & refusals[i].status) != 0) {
                return refusals[i].why;
            }
        }
        return not_verified;
    }
    const char *why = leaf_name(&chain[0], name);
    if (why != NULL) {
        name[0] = '\0';
    }
    return why;
}
