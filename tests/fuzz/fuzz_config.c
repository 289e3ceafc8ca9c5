/* The config file (engine/config.c with inih): the input is written to a
 * file (one fixed path per process under /tmp) and loaded as
 * `ringcast --config FILE` would load it.
 *
 * Invariants, beyond "no crash" and no leak (LeakSanitizer checks that
 * rc_config_free, or the failure path, releases everything):
 *  - success leaves every string NUL-terminated inside its field, the secret
 *    lengths equal to their strings, the ws path starting with '/', the
 *    enumerations in range, the power-of-two sizes powers of two, and at
 *    most RC_MAX_PUBLIC_PATTERNS non-NULL patterns and allowed origins;
 *  - failure writes a one-line, NUL-terminated message and nothing to free;
 *  - loading the same file again gives the same outcome and the same
 *    configuration. */
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "tests/fuzz/fuzz.h"

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

static int load(rc_config *cfg, char *err, size_t errlen)
{
    char *argv[] = {"ringcast", "--config", path, NULL};
    return rc_config_load(cfg, 3, argv, err, errlen);
}

#define STR_OK(f) FUZZ_CHECK(memchr(cfg->f, '\0', sizeof(cfg->f)) != NULL)

static int pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

static void check_ok(const rc_config *cfg)
{
    STR_OK(listen_host);
    STR_OK(ws_path);
    STR_OK(node_id);
    STR_OK(jwt_secret);
    STR_OK(api_key);
    STR_OK(redis_url);
    STR_OK(redis_prefix);
    STR_OK(admission_secret);
    FUZZ_CHECK(cfg->jwt_secret_len == strlen(cfg->jwt_secret));
    FUZZ_CHECK(cfg->ws_path[0] == '/');
    FUZZ_CHECK(cfg->log_level >= RC_LOG_DEBUG && cfg->log_level <= RC_LOG_ERROR);
    FUZZ_CHECK(cfg->backlog_policy == RC_BACKLOG_CLOSE || cfg->backlog_policy == RC_BACKLOG_DROP);
    FUZZ_CHECK(pow2(cfg->recv_buf_count) && pow2(cfg->queue_size));
    FUZZ_CHECK(cfg->n_public_patterns >= 0 && cfg->n_public_patterns <= RC_MAX_PUBLIC_PATTERNS);
    for (int i = 0; i < cfg->n_public_patterns; i++)
        FUZZ_CHECK(cfg->public_patterns[i] != NULL);
    FUZZ_CHECK(cfg->n_allowed_origins >= 0 && cfg->n_allowed_origins <= RC_MAX_PUBLIC_PATTERNS);
    for (int i = 0; i < cfg->n_allowed_origins; i++)
        FUZZ_CHECK(cfg->allowed_origins[i] != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof(path), "/tmp/ringcast-fuzz-config.%d.ini", (int)getpid());
        unsetenv("RINGCAST_JWT_SECRET");
        unsetenv("RINGCAST_API_KEY");
        unsetenv("RINGCAST_ADMISSION_SECRET");
        unsetenv("RINGCAST_REDIS_URL");
        atexit(remove_file);
    }
    if (size > 65536)
        return 0;
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);

    static rc_config a, b;
    char ea[256], eb[256];
    memset(ea, 0x5a, sizeof(ea));
    int ra = load(&a, ea, sizeof(ea));
    FUZZ_CHECK(ra == 0 || ra == -1);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "config: %d %s\n", ra, ra ? ea : "loaded");
    if (ra == 0) {
        check_ok(&a);
    } else {
        FUZZ_CHECK(memchr(ea, '\0', sizeof(ea)) != NULL && ea[0] != '\0');
        FUZZ_CHECK(strchr(ea, '\n') == NULL);
        FUZZ_CHECK(a.n_public_patterns == 0 && a.n_allowed_origins == 0);
    }
    int rb = load(&b, eb, sizeof(eb));
    FUZZ_CHECK(ra == rb);
    if (ra == 0) {
        /* Same scalars and strings; the pattern copies are separate. */
        FUZZ_CHECK(a.n_public_patterns == b.n_public_patterns);
        for (int i = 0; i < a.n_public_patterns; i++)
            FUZZ_CHECK(strcmp(a.public_patterns[i], b.public_patterns[i]) == 0);
        FUZZ_CHECK(a.n_allowed_origins == b.n_allowed_origins);
        for (int i = 0; i < a.n_allowed_origins; i++)
            FUZZ_CHECK(strcmp(a.allowed_origins[i], b.allowed_origins[i]) == 0);
        rc_config ca = a, cb = b;
        memset(ca.public_patterns, 0, sizeof(ca.public_patterns));
        memset(cb.public_patterns, 0, sizeof(cb.public_patterns));
        memset(ca.allowed_origins, 0, sizeof(ca.allowed_origins));
        memset(cb.allowed_origins, 0, sizeof(cb.allowed_origins));
        FUZZ_CHECK(memcmp(&ca, &cb, sizeof(ca)) == 0);
        rc_config_free(&a);
        rc_config_free(&b);
    } else {
        FUZZ_CHECK(strcmp(ea, eb) == 0);
    }
    return 0;
}
