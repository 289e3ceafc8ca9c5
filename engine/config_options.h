/* The table of ringcast's options (engine/config_options.c), which
 * engine/config.c reads to set defaults, parse the INI file and the
 * command line, and print --help. Private to engine/config*.c.
 *
 * Thread: the main thread, before any other thread starts. */
#ifndef RC_CONFIG_OPTIONS_H
#define RC_CONFIG_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

enum kind {
    K_U32,
    K_U64,
    K_INT,
    K_BOOL, /* flag without value sets bval; file value is a boolean */
    K_LISTEN,
    K_PATH,
    K_NODE_ID,
    K_LOG_LEVEL,
    K_BACKLOG,
    K_SECRET, /* jwt_secret with its length */
    K_STRING,
    K_REDIS_URL,
    K_PREFIX,
    K_PUBLIC,
    K_ORIGIN,
    K_HISTORY,
    K_PRESENCE,
    K_DEFLATE,
    K_EVENT,
    K_SIO_NSP,
    K_SIO_MAP,
    K_CONFIG,
    K_HELP,
    K_VERSION,
};

struct opt {
    const char *name;    /* long flag; the file key is this with '-' -> '_' */
    const char *section; /* NULL: command line only */
    enum kind kind;
    size_t off, size;
    uint64_t min, max;
    int pow2;
    int bval;         /* K_BOOL: what the bare flag sets */
    const char *arg;  /* metavariable in --help; NULL: takes no value */
    const char *help; /* NULL: folded into another line of --help */
};

#define RC_CFG_MAX_OPTS 192 /* room for the table (checked where it is defined) */

extern const struct opt rc_cfg_opts[];
extern const size_t rc_cfg_nopts;
/* The INI sections in --help order, and their titles. */
extern const char *const rc_cfg_sections[];
extern const char *const rc_cfg_section_titles[];
extern const size_t rc_cfg_nsections;

#endif
