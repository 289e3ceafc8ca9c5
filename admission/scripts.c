/* The waiting rooms' Lua scripts, which Redis runs atomically: see
 * admission/admission.h for the keys. Sent with EVAL by the relay thread
 * (admission/admission.c, admission/api.c); data only, no thread of its own. */
#include "admission/internal.h"

/* One queue's tick, atomic, fenced by the queue's own lease: it renews the
 * lease when the caller holds it, takes it when nobody does, and does
 * nothing when another node holds it. Every key is the queue's (one Redis
 * Cluster slot), the lease included, so the check and the commit happen in
 * one script on the slot's primary: a node that lost a queue's lease
 * (paused, partitioned, its lease expired) cannot commit that queue.
 * KEYS: lease cfg wait active seen stats seq; ARGV: node, Redis channel of
 * queue:{q} (in the queue's slot), abandoned per tick, lease ms, the publish
 * command (PUBLISH, or SPUBLISH on a cluster), and 1 to publish the tick
 * here (0: the caller publishes it, the script's last answer, once a replica
 * has it). Times are Redis's clock (TIME),
 * so the nodes' clocks never meet in one comparison.
 * Returns {admitted, waiting, active, head, abandoned, tick message}, {-1} when another
 * node holds the lease, {-2} when the queue has no configuration (no lease
 * is taken for it). */
const char RC_TICK_LUA[] =
    "local c = redis.call('HMGET', KEYS[2], 'rate', 'max_active', 'active_ttl',\n"
    "                     'abandon_timeout', 'state')\n"
    "if not c[1] then return {-2} end\n"
    "local holder = redis.call('GET', KEYS[1])\n"
    "if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "elseif not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])\n"
    "else return {-1} end\n"
    "local rate, maxa = tonumber(c[1]), tonumber(c[2])\n"
    "local ttl, abandon = tonumber(c[3]), tonumber(c[4])\n"
    "local state = c[5] or 'open'\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)\n"
    "local active = redis.call('ZCARD', KEYS[4])\n"
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. (now - abandon * 1000),\n"
    "                        'LIMIT', 0, tonumber(ARGV[3]))\n"
    "if #gone > 0 then\n"
    "  redis.call('ZREM', KEYS[3], unpack(gone))\n"
    "  redis.call('ZREM', KEYS[5], unpack(gone))\n"
    "  redis.call('HINCRBY', KEYS[6], 'abandoned_total', #gone)\n"
    "end\n"
    "local n = 0\n"
    "if state == 'open' then n = math.min(rate, maxa - active) end\n"
    "local head = tonumber(redis.call('HGET', KEYS[6], 'head') or '0')\n"
    "local adm = {}\n"
    "local exp = now + ttl * 1000\n"
    "if n > 0 then\n"
    "  local cand = redis.call('ZRANGE', KEYS[3], 0, n - 1, 'WITHSCORES')\n"
    "  local za = {}\n"
    "  for i = 1, #cand, 2 do\n"
    "    adm[#adm + 1] = cand[i]\n"
    "    za[#za + 1] = exp\n"
    "    za[#za + 1] = cand[i]\n"
    "    local t = tonumber(cand[i + 1])\n"
    "    if t > head then head = t end\n"
    "  end\n"
    "  if #adm > 0 then\n"
    "    redis.call('ZREM', KEYS[3], unpack(adm))\n"
    "    redis.call('ZREM', KEYS[5], unpack(adm))\n"
    "    redis.call('ZADD', KEYS[4], unpack(za))\n"
    "    redis.call('HINCRBY', KEYS[6], 'admitted_total', #adm)\n"
    "  end\n"
    "end\n"
    /* The head follows the line: everyone below the lowest waiting ticket
     * has been admitted or removed, so positions never go up. */
    "local low = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')\n"
    "if low[2] then\n"
    "  local t = tonumber(low[2]) - 1\n"
    "  if t > head then head = t end\n"
    "else\n"
    "  local s = tonumber(redis.call('GET', KEYS[7]) or '0')\n"
    "  if s > head then head = s end\n"
    "end\n"
    /* The smoothed number of places each tick opens, for the waiters' ETA:
     * the configured rate until ticks have measured one, and while the line
     * is shorter than n the places it could have filled (an empty line says
     * nothing about how fast it moves). A paused queue keeps its figure. */
    "local ewma = tonumber(redis.call('HGET', KEYS[6], 'ewma') or rate)\n"
    "if state == 'open' then ewma = ewma * 0.8 + math.max(n, 0) * 0.2 end\n"
    "redis.call('HSET', KEYS[6], 'head', string.format('%d', head), 'ewma',\n"
    "           string.format('%.4f', ewma))\n"
    "local waiting = redis.call('ZCARD', KEYS[3])\n"
    "local tot = redis.call('HMGET', KEYS[6], 'admitted_total', 'abandoned_total')\n"
    "local last = redis.call('GET', KEYS[7]) or '0'\n"
    "active = active + #adm\n"
    "local list = '[]'\n"
    "if #adm > 0 then list = cjson.encode(adm) end\n"
    "local msg = '{\"event\":\"queue.tick\",\"data\":{\"head\":' ..\n"
    "  string.format('%d', head) .. ',\"admitted\":' .. list .. ',\"exp\":' ..\n"
    "  string.format('%d', exp) .. ',\"rate\":' .. string.format('%d', rate) ..\n"
    "  ',\"ewma\":' .. string.format('%.4f', ewma) .. ',\"waiting\":' .. waiting ..\n"
    "  ',\"active\":' .. active .. ',\"abandon\":' .. string.format('%d', abandon) ..\n"
    "  ',\"state\":\"' .. state .. '\",\"time\":' .. string.format('%d', now) ..\n"
    "  ',\"max_active\":' .. string.format('%d', maxa) .. ',\"last_ticket\":' .. last ..\n"
    "  ',\"admitted_total\":' .. (tot[1] or '0') .. ',\"abandoned_total\":' ..\n"
    "  (tot[2] or '0') .. '}}'\n"
    /* Announced here, or by the caller once a replica has the tick (WAIT):
     * what a failover could lose is never announced. */
    "if ARGV[6] ~= '0' then redis.call(ARGV[5], ARGV[2], msg) end\n"
    "return {#adm, waiting, active, head, #gone, msg}\n";

/* KEYS: cfg wait active seq seen stats; ARGV: user, "join" or "status".
 * {1, ticket, head, ewma} waiting (join: a new ticket only for a new user);
 * {2, expiry} admitted and still active; {-1} no such queue; and for a
 * status question (which never joins), {0} when the user is neither waiting
 * nor active (left, removed as abandoned, or the admission expired). */
const char RC_JOIN_LUA[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "local a = redis.call('ZSCORE', KEYS[3], ARGV[1])\n"
    "if a and tonumber(a) > now then return {2, a} end\n"
    "local t = redis.call('ZSCORE', KEYS[2], ARGV[1])\n"
    "if ARGV[2] == 'join' then\n"
    "  if not t then\n"
    "    t = redis.call('INCR', KEYS[4])\n"
    "    redis.call('ZADD', KEYS[2], t, ARGV[1])\n"
    "  end\n"
    "  redis.call('ZADD', KEYS[5], now, ARGV[1])\n"
    "elseif not t then\n"
    "  return {0}\n"
    "end\n"
    "local s = redis.call('HMGET', KEYS[6], 'head', 'ewma')\n"
    /* Before the first tick, the configured rate is the best estimate; while
     * the queue is paused there is none (0: no ETA). */
    "local c = redis.call('HMGET', KEYS[1], 'rate', 'state')\n"
    "if c[2] == 'paused' then return {1, tostring(t), s[1] or '0', '0'} end\n"
    "return {1, tostring(t), s[1] or '0', s[2] or c[1]}\n";

/* KEYS: wait seen; ARGV: user, Redis channel of queue:{q}, the publish
 * command (PUBLISH, or SPUBLISH on a cluster). Takes the user out
 * of the line and tells every node (event queue.left with the ticket), so
 * that the user's other tabs stop waiting too. 1 when the user was waiting. */
const char RC_LEAVE_LUA[] =
    "local t = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "if not t then return 0 end\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call(ARGV[3], ARGV[2], '{\"event\":\"queue.left\",\"data\":{\"user\":' ..\n"
    "  cjson.encode(ARGV[1]) .. ',\"ticket\":' .. string.format('%d', t) .. '}}')\n"
    "return 1\n";

/* KEYS[1] seen; ARGV[1] user. The user's last connection on this node
 * closed: the abandon timeout counts from now (not from the last refresh,
 * which may be ahead of now: see SEEN_LUA). A tab elsewhere refreshes it. */
const char RC_GONE_LUA[] =
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "return redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])\n";

/* KEYS[1] seen; ARGV[1] ms ahead, then users: each one still in the set is
 * seen until now + ahead. A node refreshes each of its waiters at least
 * every `ahead` ms, so a waiter's seen time is never in the past while it
 * is connected; if the node dies, the abandon timeout counts from no earlier
 * than the moment it died, and a waiter back within it keeps the place. */
const char RC_SEEN_LUA[] =
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "local t = now + tonumber(ARGV[1])\n"
    "for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', 'GT', t, ARGV[i]) end\n"
    "return #ARGV - 1\n";
