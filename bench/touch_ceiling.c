/* touch_ceiling.c - what a first touch of memory costs on this machine, the
 * ceiling that explains the ingest rows' two speeds. Uses only libc.
 *
 *   touch_ceiling [GB [PAUSE_S]]
 *
 * Maps GB (default 4) of anonymous memory and writes one byte in each 4 KB
 * page, unmaps it, and does it again at once: the first pass costs what
 * memory costs as the machine left it, the second what memory that was
 * just in use costs. On a virtual machine whose host takes back the pages
 * its guest frees (virtio-balloon free page reporting), the first pass
 * after a large free pays the host's fault for every page and the second
 * does not. With PAUSE_S, a third pass runs after that many seconds idle,
 * to show the pages going back to the host.
 *
 * Prints `touch_first_us_per_page <x>`, `touch_again_us_per_page <x>` and,
 * with PAUSE_S, `touch_after_pause_us_per_page <x>`. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Microseconds a page to map, write and unmap bytes of fresh memory;
 * negative if the memory could not be mapped. */
static double touch_pass(size_t bytes) {
    volatile char *p =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    double t0 = now_s();
    for (size_t at = 0; at < bytes; at += PAGE)
        p[at] = 1;
    double took = now_s() - t0;
    munmap((void *)p, bytes);
    return took * 1e6 / (double)(bytes / PAGE);
}

int main(int argc, char **argv) {
    long gb = argc > 1 ? atol(argv[1]) : 4;
    long pause_s = argc > 2 ? atol(argv[2]) : 0;
    if (gb < 1 || gb > 64 || pause_s < 0 || pause_s > 600) {
        fprintf(stderr, "usage: touch_ceiling [GB (1..64) [PAUSE_S (0..600)]]\n");
        return 2;
    }
    size_t bytes = (size_t)gb << 30;
    double first = touch_pass(bytes), again = touch_pass(bytes);
    if (first < 0 || again < 0) {
        fprintf(stderr, "touch_ceiling: could not map %ld GB\n", gb);
        return 1;
    }
    printf("touch_first_us_per_page %.2f\n", first);
    printf("touch_again_us_per_page %.2f\n", again);
    if (pause_s > 0) {
        sleep((unsigned)pause_s);
        double later = touch_pass(bytes);
        if (later >= 0) printf("touch_after_pause_us_per_page %.2f\n", later);
    }
    return 0;
}
