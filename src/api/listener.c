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
 * Which worker: the one numbered after the CPU the connection's packets
 * arrive on (SO_INCOMING_CPU), so a client and the worker serving it tend
 * to share a CPU and its caches instead of waking each other across CPUs
 * on every request; unless that worker already holds more than
 * LISTENER_SLACK connections over the least loaded one, which then gets it.
 * Measured: with the client on the same two CPUs, plain round-robin served
 * 25% fewer decisions per second.
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
    uint16_t port;               /* the bound port, also when 0 was asked */
    struct MHD_Daemon **workers; /* borrowed from api_listener_start's caller */
    unsigned worker_count;
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

static unsigned worker_connections(struct MHD_Daemon *d) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

/* The worker of the CPU the connection came in on, unless it holds more
 * than LISTENER_SLACK connections over the least loaded one. */
#define LISTENER_SLACK 2

static struct MHD_Daemon *worker_pick(api_listener *l, int fd) {
    unsigned n = l->worker_count;
    if (n == 1) return l->workers[0];
    int cpu = -1;
    socklen_t len = sizeof cpu;
    unsigned want;
    if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) == 0 && cpu >= 0)
        want = (unsigned)cpu % n;
    else
        want = l->next++ % n;
    unsigned least = 0, least_count = UINT32_MAX, want_count = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned c = worker_connections(l->workers[i]);
        if (i == want) want_count = c;
        if (c < least_count) {
            least = i;
            least_count = c;
        }
    }
    return l->workers[want_count > least_count + LISTENER_SLACK ? least : want];
}

static void *accept_loop(void *arg) {
    api_listener *l = arg;
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            /* closes fd itself when it cannot take it (connection limit) */
            MHD_add_connection(worker_pick(l, fd), fd, (struct sockaddr *)&peer, peer_len);
            continue;
        }
        int err = errno;
        if (atomic_load(&l->stopping)) break;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EAGAIN) continue;
        accept_trouble(err);
    }
    return NULL;
}

bsp_err api_listener_start(api_listener *l, struct MHD_Daemon **workers, unsigned count) {
    l->workers = workers;
    l->worker_count = count;
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
