/* The parsers of option values (engine/config_values.c), private to the
 * configuration. Each returns 0, or -1 with a message for the operator in
 * msg[ml] (where it takes one). */
#ifndef RC_CONFIG_VALUES_H
#define RC_CONFIG_VALUES_H

#include "engine/config.h"

/* Strict decimal: digits only, no sign or spaces, no overflow. */
int rc_cfg_parse_u64(const char *s, uint64_t *out);
/* 1/true/yes/on or 0/false/no/off, any case. */
int rc_cfg_parse_bool(const char *s, int *out);
/* 1 for the characters of a host name: A-Z a-z 0-9 . - _ */
int rc_cfg_host_char(char c);
/* Copies v into dst[size] when it fits. */
int rc_cfg_copy_str(char *dst, size_t size, const char *v, char *msg, size_t ml);
/* HOST:PORT or [IPV6]:PORT (an empty host is 0.0.0.0) into cfg's listen
 * address. */
int rc_cfg_parse_listen(rc_config *cfg, const char *v, char *msg, size_t ml);
/* Adds the comma-separated patterns of v to list[*count] (at most
 * RC_MAX_PUBLIC_PATTERNS). */
int rc_cfg_add_patterns(char **list, int *count, const char *v, char *msg, size_t ml);
/* Frees the strings of list and empties it. */
void rc_cfg_clear_list(char **list, int *count);

/* A --history rule: "PATTERN size=N ttl=SECONDS". */
int rc_cfg_parse_history(rc_history_rule *r, const char *v, char *msg, size_t ml);
/* "PATTERN STREAM [maxlen=N]" into r. */
int rc_cfg_parse_event(rc_event_rule *r, const char *v, char *msg, size_t ml);
/* "PATTERN on|off" into r. */
int rc_cfg_parse_deflate(rc_deflate_rule *r, const char *v, char *msg, size_t ml);
/* "PATTERN [join_leave]" into r. */
int rc_cfg_parse_presence(rc_presence_rule *r, const char *v, char *msg, size_t ml);

/* A --socketio-map rule: "EVENT subscribe|unsubscribe|publish PREFIX". */
int rc_cfg_parse_sio_map(rc_sio_map *r, const char *v, char *msg, size_t ml);
/* A --socketio-namespace: "/" and a name of channel characters, without
 * '/' after the first: the namespace's channels are "NAME/..." */
int rc_cfg_check_sio_nsp(const char *v, char *msg, size_t ml);

#endif
