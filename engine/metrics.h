/* Counters an operator asks about, and their Prometheus text rendering.
 *
 * Each shard owns an rc_shard_stats and is its only writer; GET /metrics,
 * served by whichever shard took the request, reads every shard's and the
 * relay's with relaxed loads (rc_counter). */
#ifndef RC_METRICS_H
#define RC_METRICS_H

#include "engine/queue.h"
#include "proto/json.h"

/* Handshake outcomes: the label "reason" of ringcast_handshakes_total. */
enum rc_hs_outcome {
    RC_HS_OK = 0,           /* 101 */
    RC_HS_BAD_REQUEST,      /* 400 */
    RC_HS_UNAUTHORIZED,     /* 401: bad, expired or missing token */
    RC_HS_FORBIDDEN,        /* 403 */
    RC_HS_NOT_FOUND,        /* 404 */
    RC_HS_TIMEOUT,          /* 408: head not complete within the deadline */
    RC_HS_UPGRADE_REQUIRED, /* 426 */
    RC_HS_RATE_LIMITED,     /* 429 */
    RC_HS_TOO_LARGE,        /* 431 */
    RC_HS_FULL,             /* 503: connection limit reached */
    RC_HS_VERSION,          /* 505 */
    RC_HS_DRAINING,         /* 503: the node drains (SIGTERM) */
    RC_HS__COUNT
};

/* Close codes counted by ringcast_ws_closes_total{code}. */
#define RC_CLOSE_CODES                                                                             \
    {                                                                                              \
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1013, 4001, 4002                           \
    }
#define RC_N_CLOSE_CODES 11

#define RC_SIO_REC_SLOTS 8

/* What became of a WebSocket opened to upgrade a polling session: the
 * label "outcome" of ringcast_socketio_upgrades_total. */
enum rc_sio_upg_outcome {
    RC_SIO_UPG_UPGRADED = 0, /* it took its session over ("5") */
    RC_SIO_UPG_TIMEOUT,      /* no probe and upgrade in time */
    RC_SIO_UPG_REFUSED,      /* another one upgrades (or upgraded) the session */
    RC_SIO_UPG__COUNT
};

/* Why an upgrade did not get permessage-deflate although it offered it:
 * the label "reason" of ringcast_deflate_declined_total. */
enum rc_pmd_declined {
    RC_PMD_DECL_OFF = 0, /* --no-permessage-deflate */
    RC_PMD_DECL_OFFER,   /* no offer we could accept (parameters, window bits) */
    RC_PMD_DECL_CLIENT,  /* a client known to break with it (Safari 15.0-15.3) */
    RC_PMD_DECL__COUNT
};

/* Why a client's compressed message was refused: the label "reason" of
 * ringcast_inflate_refused_total. */
enum rc_pmd_refused {
    RC_PMD_REF_TOO_BIG = 0, /* inflated past --max-message-bytes: 1009 */
    RC_PMD_REF_BAD,         /* not valid compressed data, or invalid UTF-8 inside: 1007 */
    RC_PMD_REF_RSV1,        /* RSV1 without permessage-deflate, or on a continuation or
                               control frame: 1002 */
    RC_PMD_REF__COUNT
};

typedef struct rc_shard_stats {
    rc_counter conns_open; /* gauge: connections in any state */
    rc_counter ws_open;    /* gauge: WebSocket connections open */
    rc_counter accepted;
    rc_counter accept_errors;
    rc_counter handshakes[RC_HS__COUNT];
    rc_counter http_requests;  /* non-upgrade requests answered */
    rc_counter msgs_in;        /* client text messages */
    rc_counter bytes_in;       /* bytes received (all) */
    rc_counter msgs_out;       /* frames queued to clients (all kinds) */
    rc_counter bytes_out;      /* bytes sent */
    rc_counter sends;          /* send operations submitted */
    rc_counter frames_merged;  /* small frames copied into one segment of a send */
    rc_counter send_waiting;   /* gauge: connections waiting for their turn to send */
    rc_counter deliveries;     /* channel messages queued to clients */
    rc_counter backlog_closes; /* connections closed by the backlog policy */
    rc_counter backlog_drops;  /* messages dropped by the drop policy */
    rc_counter backlog_bytes;  /* gauge: bytes queued to clients, not yet sent */
    rc_counter proto_errors[RC_PERR__COUNT];
    rc_counter closes[RC_N_CLOSE_CODES + 1]; /* close frames sent by code; last: other */
    rc_counter pings_sent;
    rc_counter heartbeat_timeouts;
    rc_counter token_expiries;
    rc_counter rooms;               /* gauge */
    rc_counter subscriptions;       /* gauge */
    rc_counter publishes;           /* accepted from clients and the HTTP API */
    rc_counter waiters;             /* gauge: connections waiting in a queue */
    rc_counter admitted;            /* admission tokens handed out */
    rc_counter relay_full;          /* pushes refused by a full shard->relay queue */
    rc_counter relay_backlog;       /* gauge: items waiting for room in that queue */
    rc_counter recv_nobufs;         /* recv re-armed after provided buffers ran out */
    rc_counter recv_buffers;        /* gauge: receive buffers in circulation */
    rc_counter table_trimmed;       /* pages of free connection slots given back */
    rc_counter ws_sessions;         /* gauge: wslay contexts lent to connections */
    rc_counter held_conns;          /* gauge: connections whose request waits for the relay */
    rc_counter deferred;            /* requests that waited behind an earlier one */
    rc_counter defer_closes;        /* connections closed for sending too much while held */
    rc_counter presence_coalesced;  /* presence_stats that shared a question in flight */
    rc_counter replies_delivered;   /* backends' replies handed to their connection */
    rc_counter replies_gone;        /* backends' replies for a connection no longer there */
    rc_counter controlled;          /* connections a server-side command applied to */
    rc_counter refresh_asked;       /* clients asked for a new token before exp */
    rc_counter refreshed;           /* tokens replaced on an open connection */
    rc_counter refresh_refused;     /* refresh requests refused (bad token, other user) */
    rc_counter conns_moved;         /* connections whose socket went to another shard */
    rc_counter conns_move_failed;   /* moves the kernel refused: answered 503 here */
    rc_counter sio_polling;         /* gauge: Engine.IO long-polling sessions */
    rc_counter sio_open;            /* gauge: Socket.IO (Engine.IO) connections open */
    rc_counter sio_connects;        /* Socket.IO namespace CONNECTs accepted */
    rc_counter sio_connect_errors;  /* CONNECTs refused (CONNECT_ERROR sent) */
    rc_counter sio_bad_packets;     /* malformed Engine.IO or Socket.IO packets */
    rc_counter sio_binary_refused;  /* packets with binary attachments refused */
    rc_counter sio_emitter_reached; /* sessions the emitter's broadcasts and operations reached */
    rc_counter sio_recoveries[RC_SIO_REC_SLOTS]; /* by enum rc_sio_rec_outcome (sio/recovery.h) */
    rc_counter sio_upgrades[RC_SIO_UPG__COUNT];  /* by enum rc_sio_upg_outcome */
    rc_counter deflate_conns;      /* gauge: open connections that negotiated permessage-deflate */
    rc_counter deflate_negotiated; /* upgrades that negotiated it */
    rc_counter deflate_declined[RC_PMD_DECL__COUNT]; /* offered, not negotiated, by reason */
    rc_counter deflate_frames;                       /* compressed frames queued to clients */
    rc_counter deflate_frame_bytes;                  /* their bytes */
    rc_counter deflate_plain_bytes;                  /* what their plain frames would have been */
    rc_counter inflated;                             /* compressed client messages inflated */
    rc_counter inflate_refused[RC_PMD_REF__COUNT];   /* by enum rc_pmd_refused */
} rc_shard_stats;

/* Index of code in RC_CLOSE_CODES, or RC_N_CLOSE_CODES for others. Here
 * rather than in metrics.c: the connection layer counts its closes with it,
 * and the renderer (which reads every feature's counters) sits above it. */
static inline int rc_metrics_close_index(uint16_t code)
{
    static const uint16_t codes[RC_N_CLOSE_CODES] = RC_CLOSE_CODES;
    for (int i = 0; i < RC_N_CLOSE_CODES; i++)
        if (codes[i] == code)
            return i;
    return RC_N_CLOSE_CODES;
}

#endif
