/* peek.c - a profile's ids read from its storage form without parsing the
 * whole of it: the writer (codec.c) puts "uid" and "aid" right after the
 * version and the pid (each only when not empty), ahead of traits, lists
 * of products and recent events, so only those two arrays are parsed. A
 * stored form laid out otherwise is parsed whole, so the answer never
 * depends on the layout. */
#include "profile/profile.h"

#include <stdio.h>
#include <string.h>

#define PEEK_HEAD 512 /* bytes searched for the arrays */

static void copy_first(const cJSON *arr, char *out, size_t cap) {
    const cJSON *first = cJSON_GetArrayItem(arr, 0);
    if (cJSON_IsString(first) && strlen(first->valuestring) < cap)
        snprintf(out, cap, "%s", first->valuestring);
}

/* At *at: `,"key":[...]` -> the first string copied, *at moved past it.
 * False if something else is there (the list is empty, so not written). */
static bool take_list(const char **at, const char *end, const char *key, char *out, size_t cap,
                      bool *bad) {
    char pattern[16];
    int n = snprintf(pattern, sizeof pattern, ",\"%s\":", key);
    if ((size_t)(end - *at) < (size_t)n || memcmp(*at, pattern, (size_t)n) != 0) return false;
    const char *stop = NULL;
    cJSON *arr = cJSON_ParseWithLengthOpts(*at + n, (size_t)(end - *at - n), &stop, 0);
    *bad = !cJSON_IsArray(arr) || !stop;
    if (!*bad) {
        copy_first(arr, out, cap);
        *at = stop;
    }
    cJSON_Delete(arr);
    return !*bad;
}

/* The writer's layout: {"v":N,"pid":"digits"[,"uid":[...]][,"aid":[...]],... */
static bool peek_layout(const char *json, size_t len, char *uid, size_t uid_cap, char *aid,
                        size_t aid_cap) {
    static const char pid_key[] = "\"pid\":\"";
    size_t head = len < PEEK_HEAD ? len : PEEK_HEAD;
    const char *at = memmem(json, head, pid_key, sizeof pid_key - 1);
    if (!at) return false;
    at += sizeof pid_key - 1;
    const char *end = json + len;
    while (at < end && *at >= '0' && *at <= '9')
        at++;
    if (at == end || *at != '"') return false;
    at++;
    bool bad = false;
    take_list(&at, end, "uid", uid, uid_cap, &bad);
    if (!bad) take_list(&at, end, "aid", aid, aid_cap, &bad);
    return !bad;
}

static bsp_err peek_whole(const char *json, size_t len, char *uid, size_t uid_cap, char *aid,
                          size_t aid_cap) {
    bsp_profile *p = NULL;
    bsp_err rc = profile_from_json(json, len, &p);
    if (rc != BSP_OK) return rc;
    const char *u = profile_id_count(p, 'u') ? profile_id_at(p, 'u', 0) : NULL;
    const char *a = profile_id_count(p, 'a') ? profile_id_at(p, 'a', 0) : NULL;
    if (u && strlen(u) < uid_cap) snprintf(uid, uid_cap, "%s", u);
    if (a && strlen(a) < aid_cap) snprintf(aid, aid_cap, "%s", a);
    profile_free(p);
    return BSP_OK;
}

bsp_err profile_peek_ids(const char *json, size_t len, char *uid, size_t uid_cap, char *aid,
                         size_t aid_cap) {
    uid[0] = aid[0] = '\0';
    if (peek_layout(json, len, uid, uid_cap, aid, aid_cap)) return BSP_OK;
    uid[0] = aid[0] = '\0';
    return peek_whole(json, len, uid, uid_cap, aid, aid_cap);
}
