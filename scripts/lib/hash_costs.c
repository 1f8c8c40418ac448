/* Cost of one token hash: keyed BLAKE2b-256 (what Tessera does) against Argon2id (what it chose not to do),
 * measured with libsodium in one run. Built and run by scripts/bench-hash. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const char *token = "tsr_2xXDbLdAAt2fWbWcx8mJSUPbFSAShQJ2UVs6nS2CxwG1a3sZ6"; /* 53 bytes, like a real token */
    unsigned char key[crypto_generichash_KEYBYTES], out[32], salt[crypto_pwhash_SALTBYTES];
    randombytes_buf(key, sizeof key);
    randombytes_buf(salt, sizeof salt);

    const int blake_rounds = 1000000;
    double start = now_seconds();
    for (int i = 0; i < blake_rounds; i++) {
        crypto_generichash(out, sizeof out, (const unsigned char *)token, strlen(token), key, sizeof key);
    }
    double blake = (now_seconds() - start) / blake_rounds;

    const int argon_rounds = 5;
    start = now_seconds();
    for (int i = 0; i < argon_rounds; i++) {
        if (crypto_pwhash(out, sizeof out, token, strlen(token), salt, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) return 1;
    }
    double argon = (now_seconds() - start) / argon_rounds;

    printf("keyed BLAKE2b-256 of a token: %.3f us per hash (%.0f hashes/s on one core)\n", blake * 1e6, 1 / blake);
    printf("Argon2id (libsodium INTERACTIVE: %llu passes, %zu MiB): %.1f ms per hash (%.1f hashes/s on one core)\n",
           (unsigned long long)crypto_pwhash_OPSLIMIT_INTERACTIVE, (size_t)(crypto_pwhash_MEMLIMIT_INTERACTIVE >> 20), argon * 1e3, 1 / argon);
    printf("ratio Argon2id / BLAKE2b: %.0fx\n", argon / blake);
    return 0;
}
