/*
 * peer: what a client certificate presented over TLS proves. The HTTPS listener (libmicrohttpd on
 * GnuTLS) requests a certificate during the handshake and lets the handshake finish whatever the
 * client sends, so that a refusal can be a Tencent-format answer the caller can read; this module
 * judges the certificate afterwards, once per connection, and names the caller it belongs to.
 */
#ifndef GW_PEER_H
#define GW_PEER_H

#include <stddef.h>

/* A longer or larger chain is refused before any signature is checked. */
#define GW_PEER_MAX_CHAIN_CERTS 8
#define GW_PEER_MAX_CHAIN_BYTES ((size_t)64 * 1024)
/* The longest name a certificate may give (the callers file's GW_CALLERS_CERT_NAME_MAX). */
#define GW_PEER_NAME_MAX 256

/*
 * Verifies the client certificate of a finished TLS handshake: the chain must be within the
 * bounds above, chain to the trust set of the session's credentials (the listener's
 * client_ca_file), be valid now, and, when it has an extended key usage, allow client
 * authentication. session is the connection's gnutls_session_t. On success returns NULL and
 * writes to name the certificate's first URI subject alternative name or, when it has none, its
 * subject common name: printable, without control characters, at most GW_PEER_NAME_MAX bytes.
 * Otherwise returns a static phrase saying why the certificate is refused (for the caller and the
 * log: "the client certificate has expired"), and name is "".
 */
const char *gw_peer_verify(void *session, char name[GW_PEER_NAME_MAX + 1]);

#endif
