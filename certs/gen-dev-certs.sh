#!/usr/bin/env bash
# gen-dev-certs.sh [--force] OUTDIR
#
# Makes a throwaway development PKI for tests and the demo (never for production):
#   ca.pem / ca.key           a dev CA (EC P-256)
#   server.pem / server.key   server certificate signed by the CA, for the GAAP simulator, with
#                             SANs for Tencent's API host names, localhost and 127.0.0.1
#   client.pem / client.key   client certificate (CN=dev-client) signed by the CA, for mTLS
# Keys are written mode 0600. Idempotent: if every file exists and the certificates are valid for
# at least another day, nothing is done; --force regenerates everything. Files are generated in a
# temporary directory and moved into place, so OUTDIR never holds a half-made set.
# No private key is committed anywhere: this runs at test or demo time.
set -euo pipefail

usage() {
    echo "usage: $0 [--force] OUTDIR" >&2
    exit 2
}

force=0
outdir=""
for arg in "$@"; do
    case "$arg" in
    --force) force=1 ;;
    -h | --help)
        echo "usage: $0 [--force] OUTDIR"
        exit 0
        ;;
    -*) usage ;;
    *)
        [[ -z "$outdir" ]] || usage
        outdir="$arg"
        ;;
    esac
done
[[ -n "$outdir" ]] || usage

days=30
files=(ca.pem ca.key server.pem server.key client.pem client.key)

# Every file present and each certificate still valid for a day: nothing to do.
up_to_date() {
    local f
    for f in "${files[@]}"; do
        [[ -s "$outdir/$f" ]] || return 1
    done
    for f in ca.pem server.pem client.pem; do
        openssl x509 -in "$outdir/$f" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    done
    return 0
}

mkdir -p "$outdir"
if [[ $force -eq 0 ]] && up_to_date; then
    echo "dev certificates in $outdir are present and valid; use --force to regenerate"
    exit 0
fi

umask 077
tmp="$(mktemp -d "$outdir/.gen-dev-certs.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

newkey() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    chmod 600 "$1"
}

serial() {
    echo "0x$(openssl rand -hex 16)"
}

# --- CA ---
newkey "$tmp/ca.key"
openssl req -x509 -new -sha256 -key "$tmp/ca.key" -days "$days" \
    -subj "/O=tcgw development/CN=tcgw dev CA" -set_serial "$(serial)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$tmp/ca.pem"

# Issues a leaf certificate: $1 name, $2 subject, $3 extensions file.
issue() {
    newkey "$tmp/$1.key"
    openssl req -new -sha256 -key "$tmp/$1.key" -subj "$2" -out "$tmp/$1.csr"
    openssl x509 -req -sha256 -in "$tmp/$1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
        -set_serial "$(serial)" -days "$days" -extfile "$3" -extensions leaf \
        -out "$tmp/$1.pem" 2>/dev/null
    rm -f "$tmp/$1.csr"
}

# A wildcard matches exactly one label, so the regional and international GAAP hosts are listed
# explicitly as well.
cat >"$tmp/server.ext" <<'EOF'
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = @san
[san]
DNS.1 = gaap.tencentcloudapi.com
DNS.2 = *.tencentcloudapi.com
DNS.3 = gaap.intl.tencentcloudapi.com
DNS.4 = *.intl.tencentcloudapi.com
DNS.5 = gaap.ap-guangzhou.tencentcloudapi.com
DNS.6 = localhost
IP.1 = 127.0.0.1
IP.2 = ::1
EOF
issue server "/O=tcgw development/CN=gaap.tencentcloudapi.com" "$tmp/server.ext"

cat >"$tmp/client.ext" <<'EOF'
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
issue client "/O=tcgw development/CN=dev-client" "$tmp/client.ext"

openssl verify -CAfile "$tmp/ca.pem" "$tmp/server.pem" "$tmp/client.pem" >/dev/null
chmod 644 "$tmp/ca.pem" "$tmp/server.pem" "$tmp/client.pem"
for f in "${files[@]}"; do
    mv -f "$tmp/$f" "$outdir/$f"
done
echo "wrote dev CA, server and client certificates to $outdir (valid $days days)"
