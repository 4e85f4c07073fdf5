/* identity.c - identity resolution on the writer thread. An event's
 * userId, anonymousId and (for alias) previousId resolve to one profile:
 *   - no id known: a new profile owns them all;
 *   - ids known on different profiles: they are merged into the profile of
 *     the userId (Segment semantics: the anonymous history joins the known
 *     person), except that identify/track never merge two profiles that both
 *     have a different userId (a shared device); alias always merges, since
 *     it is the shop's explicit statement that two ids are one person;
 *   - ids not known yet are linked to the resulting profile.
 * A merge moves ids, timeline and computed traits, and deletes the merged
 * profile, all inside the caller's transaction. */
#include "ingest/ingest_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct id_ref {
    char kind;
    const char *id;
    uint64_t pid; /* 0 = not known */
} id_ref;

/* --- the id memo -----------------------------------------------------------
 * Ids the writer looked up or linked lately, by hash, one per slot: a
 * visitor's events repeat its ids, and a hash and a compare cost less than
 * an LMDB lookup. Every link the writer makes goes through writer_id_put,
 * which updates the memo; ids are deleted only by jobs, and a job or a
 * rebuild forgets the whole memo (a new generation), so what it holds is
 * what the writer's transaction holds. Ids never seen are not remembered. */

static id_memo_entry *id_memo_slot(bsp_ingest *ing, char kind, const char *id, size_t len) {
    if (len > ID_MEMO_ID_MAX) return NULL;
    if (!ing->id_memo) {
        ing->id_memo = calloc(ID_MEMO, sizeof *ing->id_memo);
        ing->id_memo_gen = 1;
        if (!ing->id_memo) return NULL;
    }
    uint64_t h = bsp_hash64(id, len) ^ (uint64_t)(unsigned char)kind;
    return &ing->id_memo[h & (ID_MEMO - 1)];
}

static bool id_memo_get(bsp_ingest *ing, char kind, const char *id, uint64_t *pid) {
    size_t len = strlen(id);
    const id_memo_entry *s = id_memo_slot(ing, kind, id, len);
    if (!s || s->gen != ing->id_memo_gen || s->kind != kind || s->len != len ||
        memcmp(s->id, id, len) != 0)
        return false;
    *pid = s->pid;
    return true;
}

static void id_memo_put(bsp_ingest *ing, char kind, const char *id, uint64_t pid) {
    size_t len = strlen(id);
    id_memo_entry *s = id_memo_slot(ing, kind, id, len);
    if (!s) return;
    *s = (id_memo_entry){.pid = pid, .gen = ing->id_memo_gen, .kind = kind, .len = (uint8_t)len};
    memcpy(s->id, id, len);
}

void writer_forget_ids(bsp_ingest *ing) {
    if (!ing->id_memo) return;
    if (++ing->id_memo_gen == 0) { /* wrapped: old slots could look current */
        memset(ing->id_memo, 0, ID_MEMO * sizeof *ing->id_memo);
        ing->id_memo_gen = 1;
    }
}

static bsp_err lookup(bsp_ingest *ing, bsp_txn *txn, id_ref *r) {
    if (id_memo_get(ing, r->kind, r->id, &r->pid)) return BSP_OK;
    bsp_err rc = store_id_get(txn, r->kind, r->id, &r->pid);
    if (rc == BSP_ENOTFOUND) {
        r->pid = 0;
        return BSP_OK;
    }
    if (rc == BSP_OK) id_memo_put(ing, r->kind, r->id, r->pid);
    return rc;
}

/* previousId may name an anonymous visitor or an earlier userId. */
static bsp_err lookup_previous(bsp_ingest *ing, bsp_txn *txn, id_ref *r) {
    r->kind = 'u';
    bsp_err rc = lookup(ing, txn, r);
    if (rc || r->pid) return rc;
    r->kind = 'a';
    return lookup(ing, txn, r);
}

static bool has_other_user(const bsp_profile *p, const char *user_id) {
    size_t n = profile_id_count(p, 'u');
    for (size_t i = 0; i < n; i++)
        if (!user_id || strcmp(profile_id_at(p, 'u', i), user_id) != 0) return true;
    return false;
}

bsp_err writer_id_put(bsp_ingest *ing, bsp_txn *txn, char kind, const char *id, uint64_t pid) {
    bsp_err rc = store_id_put(txn, kind, id, pid);
    if (rc) return rc;
    id_memo_put(ing, kind, id, pid);
    writer_stale(ing, fresh_id_key(id));
    if (!ing->wal_live) return BSP_OK;
    oid *link = overlay_id_new(kind, id, pid);
    if (!link) return BSP_ENOMEM;
    link->next = ing->new_ids;
    ing->new_ids = link;
    return BSP_OK;
}

static bsp_err store_profile_write(bsp_txn *txn, const pentry *e) {
    bsp_buf text = {0};
    bsp_err rc = profile_to_json(e->profile, &text);
    if (!rc) rc = store_profile_put(txn, e->pid, text.data, text.len);
    bsp_buf_free(&text);
    return rc;
}

static bsp_err merge_profiles(bsp_ingest *ing, bsp_txn *txn, uint64_t into_pid, uint64_t from_pid) {
    pentry *into, *from;
    bsp_err rc = writer_profile(ing, txn, into_pid, &into);
    if (!rc) rc = writer_profile(ing, txn, from_pid, &from);
    if (rc) return rc;
    for (char kind = 'a'; kind; kind = kind == 'a' ? 'u' : 0) {
        size_t n = profile_id_count(from->profile, kind);
        for (size_t i = 0; i < n && !rc; i++)
            rc = writer_id_put(ing, txn, kind, profile_id_at(from->profile, kind, i), into_pid);
    }
    if (rc) return rc;
    if (ing->has_hooks && ing->hooks.profile_gone)
        rc = ing->hooks.profile_gone(ing->hooks.ctx, txn, from->profile);
    if (rc) return rc;
    profile_merge(into->profile, from->profile);
    writer_relink(ing, from_pid, into_pid);
    rc = store_events_rekey(txn, from_pid, into_pid);
    /* The merged profile is stored now, in the transaction that deletes the
     * other: a replay after a crash must not find half of the person gone. */
    if (!rc) rc = store_profile_write(txn, into);
    if (!rc) rc = store_profile_del(txn, from_pid);
    if (rc == BSP_ENOTFOUND) rc = BSP_OK; /* created in this transaction */
    if (rc) return rc;
    pcache_remove(&ing->cache, from_pid);
    overlay_forget(&ing->over, from_pid);
    writer_stale(ing, fresh_pid_key(from_pid));
    rc = writer_mark_dirty(ing, into);
    ingest_touch merged = {INGEST_TOUCH_MERGED | INGEST_TOUCH_TRAITS, ~0ull, PROFILE_C_ALL};
    if (!rc) rc = writer_touch(ing, into, &merged);
    if (rc) return rc;
    bsp_debug("merged profile %llu into %llu", (unsigned long long)from_pid,
              (unsigned long long)into_pid);
    return BSP_OK;
}

/* An unknown userId arriving with an anonymousId whose profile belongs to
 * someone else is a new person on a shared device, not that someone. */
static bsp_err new_user_on_shared_device(bsp_ingest *ing, bsp_txn *txn, const id_ref *refs,
                                         const bsp_event *ev, uint64_t *target) {
    if (ev->type == BSP_EV_ALIAS || refs[0].kind != 'u' || refs[0].pid) return BSP_OK;
    pentry *e;
    bsp_err rc = writer_profile(ing, txn, *target, &e);
    if (rc) return rc;
    if (has_other_user(e->profile, refs[0].id)) *target = 0;
    return BSP_OK;
}

/* Picks the profile the event lands on: the userId's, else the first known. */
static uint64_t choose_target(const id_ref *refs, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (refs[i].kind == 'u' && refs[i].pid) return refs[i].pid;
    for (size_t i = 0; i < n; i++)
        if (refs[i].pid) return refs[i].pid;
    return 0;
}

static bsp_err link_ids(bsp_ingest *ing, bsp_txn *txn, id_ref *refs, size_t n, uint64_t target,
                        bool explicit_alias) {
    pentry *te;
    bsp_err rc = writer_profile(ing, txn, target, &te);
    if (rc) return rc;
    const char *user_id = NULL;
    for (size_t i = 0; i < n; i++)
        if (refs[i].kind == 'u' && refs[i].pid == target) user_id = refs[i].id;
    for (size_t i = 0; i < n && !rc; i++) {
        id_ref *r = &refs[i];
        if (r->pid == target) continue;
        if (r->pid) {
            pentry *other;
            rc = writer_profile(ing, txn, r->pid, &other);
            if (rc) break;
            if (explicit_alias || !has_other_user(other->profile, user_id)) {
                rc = merge_profiles(ing, txn, target, r->pid);
                for (size_t j = i + 1; j < n; j++)
                    if (refs[j].pid == r->pid) refs[j].pid = target;
                if (rc) break;
                r->pid = target;
                continue;
            }
            /* A shared device: the id now follows the person who identified. */
        }
        rc = writer_id_put(ing, txn, r->kind, r->id, target);
        if (!rc) {
            profile_add_id(te->profile, r->kind, r->id);
            rc = writer_mark_dirty(ing, te);
            r->pid = target;
        }
    }
    return rc;
}

bsp_err identity_resolve_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t *pid) {
    id_ref refs[3];
    size_t n = 0;
    bsp_err rc = BSP_OK;
    if (ev->user_id) refs[n++] = (id_ref){'u', ev->user_id, 0};
    if (ev->anonymous_id) refs[n++] = (id_ref){'a', ev->anonymous_id, 0};
    for (size_t i = 0; i < n && !rc; i++)
        rc = lookup(ing, txn, &refs[i]);
    if (!rc && ev->type == BSP_EV_ALIAS && ev->previous_id) {
        refs[n] = (id_ref){'a', ev->previous_id, 0};
        rc = lookup_previous(ing, txn, &refs[n]);
        n++;
    }
    if (rc) return rc;
    if (n == 0) return BSP_EINVAL;

    uint64_t target = choose_target(refs, n);
    if (target) rc = new_user_on_shared_device(ing, txn, refs, ev, &target);
    if (rc) return rc;
    if (!target) {
        rc = store_pid_next(txn, &target);
        if (rc) return rc;
        pentry *e;
        rc = writer_profile(ing, txn, target, &e);
        if (rc) return rc;
    } else if (n == 1) {
        *pid = target; /* the common case: one known id, nothing to link */
        return BSP_OK;
    }
    rc = link_ids(ing, txn, refs, n, target, ev->type == BSP_EV_ALIAS);
    if (!rc) *pid = target;
    return rc;
}
