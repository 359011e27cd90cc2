// The only C this package uses: one-shot HMAC-SHA256, SHA-256 and a constant-time compare from the
// system libcrypto (OpenSSL 3). A system-library target cannot hold C sources, so helpers are
// `static inline` here.
#ifndef KLIQ_COPENSSL_SHIM_H
#define KLIQ_COPENSSL_SHIM_H

#define OPENSSL_NO_DEPRECATED 1
#include <stddef.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/// HMAC-SHA256 of `data` keyed with `key`; writes 32 bytes to `out`. Returns 1 on success.
/// `key` must not be NULL even when `key_len` is 0 (OpenSSL rejects a NULL key).
static inline int kliq_hmac_sha256(const void *key, size_t key_len,
                                   const unsigned char *data, size_t data_len,
                                   unsigned char *out) {
    unsigned int out_len = 0;
    static const unsigned char empty = 0;
    if (data == NULL) { data = &empty; data_len = 0; }
    if (key_len > 0x7fffffff) return 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, data, data_len, out, &out_len) == NULL) return 0;
    return out_len == 32;
}

/// SHA-256 of `data`; writes 32 bytes to `out`. Returns 1 on success.
static inline int kliq_sha256(const unsigned char *data, size_t data_len, unsigned char *out) {
    unsigned int out_len = 0;
    static const unsigned char empty = 0;
    if (data == NULL) { data = &empty; data_len = 0; }
    if (EVP_Digest(data, data_len, out, &out_len, EVP_sha256(), NULL) != 1) return 0;
    return out_len == 32;
}

/// Constant-time comparison of `len` bytes: 0 when equal.
static inline int kliq_memcmp(const void *a, const void *b, size_t len) {
    return CRYPTO_memcmp(a, b, len);
}

#endif
