/* listener.c - the listening socket, and the thread that accepts on it and
 * hands each connection to one of the HTTP workers.
 *
 * libmicrohttpd can listen by itself, but its way to stop accepting
 * (MHD_quiesce_daemon) races with its own epoll workers in the versions
 * Debian ships: the quiescing thread and a worker both take the listen
 * socket out of the worker's epoll set, and whichever comes second gets
 * ENOENT and aborts the whole process ("Failed to remove listen FD from
 * epoll set"). A server that dies now and then on SIGTERM loses the queue
 * it was about to commit, so the workers are daemons without a listen
 * socket (MHD_USE_NO_LISTEN_SOCKET), one thread each, and this file owns
 * the socket: one thread blocks in accept4 and gives each connection to a
 * worker with MHD_add_connection.
 *
 * Which lane: the one numbered after the CPU the connection's packets
 * arrive on (SO_INCOMING_CPU), so a client and the worker serving it tend
 * to share a CPU and its caches instead of waking each other across CPUs
 * on every request; unless that lane already holds more than
 * LISTENER_SLACK connections over the least loaded one, which then gets it.
 * Measured: with the client on the same two CPUs, plain round-robin served
 * 25% fewer decisions per second.
 *
 * Which worker of the lane: the near one (poll) while it holds fewer than
 * API_LANE_NEAR_MAX connections, else the far one (epoll). Every request
 * that waits for the writer (a track call is answered once durable) is
 * suspended and resumed, and an epoll worker of libmicrohttpd takes a
 * suspended connection out of its epoll set and puts it back on resume: two
 * epoll_ctl calls a request. A poll worker builds its set anew on every
 * wake-up, so suspending costs nothing, but that wake-up looks at every
 * connection it holds; with a few dozen that is cheaper than the two calls
 * (track calls at 64 connections: 7 to 20% more a second), with thousands
 * it would not be. Hence the cap, and epoll beyond it.
 *
 * The cap must hold exactly: libmicrohttpd 0.9.75's poll worker deadlocks
 * on its own mutex when it refuses a connection over its limit, and its own
 * count (MHD_DAEMON_INFO_CURRENT_CONNECTIONS) lags a burst of hand-overs.
 * So the lane counts for itself (near_held, raised here before each
 * hand-over, lowered by the near worker's close notification), the near
 * daemon's limit is four times the cap, and a count that cannot be lowered
 * (a hand-over that failed) errs high, which only sends more to far. The
 * exact count decides only whether near has room; which lane is least
 * loaded is still judged by libmicrohttpd's lagging count (lane_pick says
 * why).
 *
 * Stopping is shutdown(2) of the socket: from that moment connection
 * attempts are refused by the kernel, the blocked accept4 returns, and the
 * thread ends. Connections already handed over are the workers'. */
#include "api/api_internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct api_listener {
    int fd;
    uint16_t port;   /* the bound port, also when 0 was asked */
    api_lane *lanes; /* borrowed from api_listener_start's caller */
    unsigned lane_count;
    unsigned next; /* round-robin when the CPU is unknown */
    pthread_t thread;
    bool started;
    atomic_bool stopping;
};

/* "host:port", "[v6]:port", ":port" (all IPv4 interfaces). */
static bool address_parse(const char *listen, struct sockaddr_storage *addr, socklen_t *addr_len) {
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1]) return false;
    size_t host_len = (size_t)(colon - listen);
    const char *host_start = listen;
    if (host_len >= 2 && listen[0] == '[' && colon[-1] == ']') {
        host_start++;
        host_len -= 2;
    }
    if (host_len >= sizeof host) return false;
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    hints.ai_family = host_len ? AF_UNSPEC : AF_INET;
    struct addrinfo *found = NULL;
    if (getaddrinfo(host_len ? host : NULL, colon + 1, &hints, &found) != 0 || !found) return false;
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    *addr_len = found->ai_addrlen;
    freeaddrinfo(found);
    return true;
}

static uint16_t bound_port(int fd) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) return 0;
    if (addr.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

/* A restarted server binds at once although the last one's connections are
 * in TIME_WAIT; an IPv6 address means IPv6 only, as it says. */
static int socket_listen(const struct sockaddr_storage *addr, socklen_t addr_len) {
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (addr->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)addr, addr_len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

bsp_err api_listener_open(const char *address, api_listener **out) {
    *out = NULL;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    if (!address_parse(address, &addr, &addr_len)) {
        bsp_error_log("bad listen address %s (want host:port or [v6]:port)", address);
        return BSP_EINVAL;
    }
    int fd = socket_listen(&addr, addr_len);
    if (fd < 0) {
        bsp_error_log("could not listen on %s: %s", address, strerror(errno));
        return BSP_EIO;
    }
    api_listener *l = calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        return BSP_ENOMEM;
    }
    l->fd = fd;
    l->port = bound_port(fd);
    *out = l;
    return BSP_OK;
}

uint16_t api_listener_port(const api_listener *l) {
    return l->port;
}

/* Out of descriptors or memory: say so once a second at most, back off a
 * little and try again; the connection waits in the backlog meanwhile. */
static void accept_trouble(int err) {
    static _Atomic uint64_t last_ns;
    uint64_t now = bsp_mono_ns();
    if (now - atomic_load(&last_ns) > 1000000000ull) {
        atomic_store(&last_ns, now);
        bsp_warn("http: accept failed: %s", strerror(err));
    }
    bsp_sleep_ms(10);
}

unsigned api_daemon_connections(struct MHD_Daemon *d) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

/* Of the lanes whose worker (near or far) has room: the wanted one unless it
 * holds more than LISTENER_SLACK connections over the least loaded, else
 * the least loaded. -1 when none has room.
 *
 * Room (near only) is judged by the exact near_held; load by
 * libmicrohttpd's own count, which lags a burst of accepts. The lag is what
 * keeps a client's burst of connections together on its own CPU's lane:
 * judged by exact counts, the slack spread each wrk thread's 8 connections
 * over both lanes, every request then woke a worker on the other CPU, and
 * decisions at 16 connections fell from 100-110k to 80-90k a second. */
#define LISTENER_SLACK 2

static int lane_pick(const api_listener *l, unsigned want, bool near) {
    int least = -1;
    unsigned least_count = UINT32_MAX, want_count = UINT32_MAX;
    for (unsigned i = 0; i < l->lane_count; i++) {
        const api_lane *lane = &l->lanes[i];
        if (near && atomic_load(&lane->near_held) >= API_LANE_NEAR_MAX) continue;
        unsigned c = api_daemon_connections(near ? lane->near : lane->far);
        if (i == want) want_count = c;
        if (c < least_count) {
            least = (int)i;
            least_count = c;
        }
    }
    if (want_count != UINT32_MAX && want_count <= least_count + LISTENER_SLACK) return (int)want;
    return least;
}

static unsigned wanted_lane(api_listener *l, int fd) {
    int cpu = -1;
    socklen_t len = sizeof cpu;
    if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) == 0 && cpu >= 0)
        return (unsigned)cpu % l->lane_count;
    return l->next++ % l->lane_count;
}

/* Gives fd to a near worker with room, else to a far one; libmicrohttpd
 * closes fd itself when it cannot take it. */
static void hand_over(api_listener *l, int fd, const struct sockaddr *peer, socklen_t peer_len) {
    unsigned want = wanted_lane(l, fd);
    int i = lane_pick(l, want, true);
    if (i >= 0) {
        /* raised first, so the count is never below what near holds; not
         * lowered when the hand-over fails, since the failure may already
         * have been notified (erring high) */
        atomic_fetch_add(&l->lanes[i].near_held, 1);
        MHD_add_connection(l->lanes[i].near, fd, peer, peer_len);
        return;
    }
    i = lane_pick(l, want, false);
    MHD_add_connection(l->lanes[i < 0 ? want : (unsigned)i].far, fd, peer, peer_len);
}

void api_lane_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code) {
    (void)conn;
    api_lane *lane = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = lane; /* marks a connection that was counted */
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context == lane) {
        *socket_context = NULL;
        atomic_fetch_sub(&lane->near_held, 1);
    }
}

static void *accept_loop(void *arg) {
    api_listener *l = arg;
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            hand_over(l, fd, (struct sockaddr *)&peer, peer_len);
            continue;
        }
        int err = errno;
        if (atomic_load(&l->stopping)) break;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EAGAIN) continue;
        accept_trouble(err);
    }
    return NULL;
}

bsp_err api_listener_start(api_listener *l, api_lane *lanes, unsigned count) {
    l->lanes = lanes;
    l->lane_count = count;
    if (pthread_create(&l->thread, NULL, accept_loop, l) != 0) return BSP_ENOMEM;
    l->started = true;
    return BSP_OK;
}

void api_listener_close(api_listener *l) {
    if (!l) return;
    atomic_store(&l->stopping, true);
    shutdown(l->fd, SHUT_RDWR); /* refuses from now on and wakes accept4 */
    if (l->started) pthread_join(l->thread, NULL);
    close(l->fd);
    free(l);
}
