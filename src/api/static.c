/* static.c - plain files under web_dir (the dashboard and bespoke.js), for
 * GET paths outside the API. Paths with ".." segments, encoded NULs or
 * hidden files are refused; "/" and directories serve index.html. */
#include "api/api_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *content_type_of(const char *path) {
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* Decodes the URL path and refuses anything that could leave web_dir. */
static bool safe_path(const char *url, char *out, size_t cap) {
    size_t len = strlen(url);
    if (len == 0 || len >= cap || url[0] != '/') return false;
    memcpy(out, url, len + 1);
    size_t decoded = MHD_http_unescape(out);
    if (decoded != strlen(out)) return false;
    return strstr(out, "/.") == NULL; /* "..", hidden files */
}

/* Opens web_dir + path (index.html for directories); -1 if none. */
static int open_file(const char *web_dir, const char *path, char *full, size_t cap,
                     struct stat *st) {
    int n = snprintf(full, cap, "%s%s", web_dir, path);
    if (n < 0 || (size_t)n >= cap) return -1;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, st) != 0) goto fail;
    if (S_ISREG(st->st_mode)) return fd;
    close(fd);
    n = snprintf(full, cap, "%s%s%sindex.html", web_dir, path,
                 path[strlen(path) - 1] == '/' ? "" : "/");
    if (n < 0 || (size_t)n >= cap) return -1;
    fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) goto fail;
    return fd;
fail:
    if (fd >= 0) close(fd);
    return -1;
}

enum MHD_Result static_handle(api_req *req, const char *url) {
    char path[1024], full[4096];
    struct stat st;
    if (!safe_path(url, path, sizeof path))
        return api_reply_errorf(req, BSP_ENOTFOUND, "", "no such file");
    int fd = open_file(req->srv->web_dir, path, full, sizeof full, &st);
    if (fd < 0) return api_reply_errorf(req, BSP_ENOTFOUND, "", "no such file");
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    return api_queue(req, 200, resp, content_type_of(full));
}
