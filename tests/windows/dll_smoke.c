/* Built with mingw against oauth_lock.dll (its import library) and run under Wine by
 * scripts/test-windows: the C ABI as a Windows program uses it.
 * Usage: dll_smoke STORE_DIR KEY EXPECTED_GENERATION
 * Asserts: a missing key gives NEEDS_LOGIN with the key named in the error; KEY (saved,
 * expired, by the CLI) gives a token of EXPECTED_GENERATION (one refresh, by this process). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "oauth_lock.h"

static int fail(const char *what, int code)
{
    char buf[1024];
    size_t len = 0;
    oauth_lock_last_error(buf, sizeof buf, &len);
    fprintf(stderr, "dll_smoke: %s: %s (%d): %s\n", what, oauth_lock_code_name(code), code, buf);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: dll_smoke STORE_DIR KEY EXPECTED_GENERATION\n");
        return 2;
    }
    printf("oauth_lock %s\n", oauth_lock_version());
    struct oauth_lock_store *store = NULL;
    int code = oauth_lock_store_new(argv[1], &store);
    if (code != OAUTH_LOCK_OK)
        return fail("oauth_lock_store_new", code);

    struct oauth_lock_source *missing = NULL;
    code = oauth_lock_source_new(store, "nobody:here", NULL, &missing);
    if (code != OAUTH_LOCK_OK)
        return fail("oauth_lock_source_new(nobody:here)", code);
    struct oauth_lock_token *token = NULL;
    struct oauth_lock_error *error = NULL;
    code = oauth_lock_source_access_token_e(missing, &token, &error);
    if (code != OAUTH_LOCK_NEEDS_LOGIN || error == NULL ||
        strstr(oauth_lock_error_message(error), "nobody:here") == NULL) {
        fprintf(stderr, "dll_smoke: a missing key gave %s: %s\n", oauth_lock_code_name(code),
                error ? oauth_lock_error_message(error) : "(no error)");
        return 1;
    }
    oauth_lock_error_free(error);
    oauth_lock_source_free(missing);

    struct oauth_lock_source *source = NULL;
    code = oauth_lock_source_new(store, argv[2], NULL, &source);
    if (code != OAUTH_LOCK_OK)
        return fail("oauth_lock_source_new", code);
    code = oauth_lock_source_access_token(source, &token);
    if (code != OAUTH_LOCK_OK)
        return fail("oauth_lock_source_access_token", code);
    unsigned long long generation = oauth_lock_token_generation(token);
    if (generation != strtoull(argv[3], NULL, 10) || strlen(oauth_lock_token_value(token)) == 0) {
        fprintf(stderr, "dll_smoke: generation %llu, expected %s\n", generation, argv[3]);
        return 1;
    }
    /* A token is never printed: its generation only. */
    printf("token of generation %llu\n", generation);
    oauth_lock_token_free(token);
    oauth_lock_source_free(source);
    oauth_lock_store_free(store);
    return 0;
}
