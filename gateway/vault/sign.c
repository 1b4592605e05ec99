/* sign: TC3 signatures with a credential, its key readable only for the HMACs. */
#include "vault/vault_int.h"

enum gw_err gw_vault_sign(struct gw_vault *vault, const char *name,
                          const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    struct cred *c;
    struct secret *s;
    char date[GW_TC3_DATE_LEN + 1];
    char sig[GW_TC3_HEX_LEN + 1];
    const unsigned char *key = NULL;
    struct gw_buf sts, auth;
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);
    gw_buf_init(&auth, GW_TC3_MAX_TEXT);

    if (vault == NULL || name == NULL || req == NULL || out == NULL) {
        return GW_ERR_INVALID;
    }
    if ((c = vault_find(vault, name)) == NULL) {
        return GW_ERR_NOT_FOUND;
    }
    /* Everything that needs no key happens outside the lock. */
    if ((err = gw_tc3_string_to_sign(req, &sts)) != GW_OK ||
        (err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        goto out;
    }

    if ((s = vault_cred_open(vault, c)) == NULL) {
        err = GW_ERR_INTERNAL;
        goto out;
    }
    if ((err = vault_cache_key(vault, s, date, req->service, &key)) == GW_OK &&
        (err = gw_tc3_signature(key, sts.data, sts.len, sig)) == GW_OK) {
        err = gw_tc3_authorization(s->id, req, sig, &auth);
    }
    vault_cred_close(vault, c);
    if (err != GW_OK) {
        goto out;
    }
    /* Appended only once complete, so out is unchanged on failure. */
    err = gw_buf_append(out, auth.data, auth.len);
out:
    gw_buf_free(&sts);
    gw_buf_free(&auth);
    return err;
}
