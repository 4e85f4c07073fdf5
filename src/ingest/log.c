/* log.c - the writer's two-speed durability. Every event is made durable by
 * appending it to the event log (sequential keys, cheap) in the transaction
 * that acknowledges it; its effect on the profile and the profile's timeline
 * is applied to the writer's in-memory working set at once, and written to
 * the store by periodic checkpoints, which coalesce many events of the same
 * visitor into one profile write. meta "applied_seq" records the newest seq a
 * checkpoint covers; after a crash the log beyond it is replayed, and each
 * stored profile's own applied seq makes the replay skip what it holds. */
#include "ingest/ingest_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define META_APPLIED_SEQ "applied_seq"
#define META_WAL_GEN "wal_gen" /* generation of the WAL records not yet stored */
#define REPLAY_CHUNK 8192

/* --- the working set ------------------------------------------------------ */

bsp_err writer_profile(bsp_ingest *ing, bsp_txn *txn, uint64_t pid, pentry **out) {
    pentry *e = pcache_get(&ing->cache, pid);
    if (e) {
        *out = e;
        return BSP_OK;
    }
    bsp_profile *p = NULL;
    bsp_slice raw;
    bsp_err rc = store_profile_get(txn, pid, &raw);
    if (rc == BSP_OK) {
        rc = profile_from_json(raw.data, raw.len, &p);
        if (rc == BSP_EPARSE || rc == BSP_ETYPE)
            bsp_warn("profile %llu unreadable, starting afresh", (unsigned long long)pid);
    }
    bool fresh = rc == BSP_ENOTFOUND || rc == BSP_EPARSE || rc == BSP_ETYPE;
    if (fresh) {
        p = profile_new(pid);
        rc = p ? BSP_OK : BSP_ENOMEM;
    }
    if (rc) return rc;
    e = pcache_put(&ing->cache, p);
    if (!e) {
        profile_free(p);
        return BSP_ENOMEM;
    }
    *out = e;
    return BSP_OK;
}

bsp_err writer_mark_dirty(bsp_ingest *ing, pentry *e) {
    if (e->dirty) return BSP_OK;
    uint64_t *dirty = bsp_grow(ing->dirty, &ing->dirty_cap, ing->dirty_len, sizeof *dirty, 4096);
    if (!dirty) return BSP_ENOMEM; /* fails the transaction: no update is lost */
    ing->dirty = dirty;
    e->dirty = true;
    ing->dirty[ing->dirty_len++] = e->pid;
    return BSP_OK;
}

bsp_err writer_link(bsp_ingest *ing, uint64_t pid, uint64_t seq) {
    timeline_link *links =
        bsp_grow(ing->links, &ing->links_cap, ing->links_len, sizeof *links, 4096);
    if (!links) return BSP_ENOMEM;
    ing->links = links;
    ing->links[ing->links_len++] = (timeline_link){pid, seq};
    return BSP_OK;
}

void writer_relink(bsp_ingest *ing, uint64_t from_pid, uint64_t to_pid) {
    for (size_t i = 0; i < ing->links_len; i++)
        if (ing->links[i].pid == from_pid) ing->links[i].pid = to_pid;
}

/* --- checkpoints ---------------------------------------------------------- */

static int link_order(const void *a, const void *b) {
    const timeline_link *x = a, *y = b;
    if (x->pid != y->pid) return x->pid < y->pid ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bsp_err put_seq(bsp_txn *txn, const char *name, uint64_t v) {
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(v >> (56 - 8 * i));
    return store_meta_put(txn, name, be, sizeof be);
}

static uint64_t get_seq(bsp_txn *txn, const char *name) {
    bsp_slice v;
    if (store_meta_get(txn, name, &v) != BSP_OK || v.len != 8) return 0;
    uint64_t out = 0;
    for (int i = 0; i < 8; i++)
        out = out << 8 | (uint8_t)v.data[i];
    return out;
}

/* Once the log holds INGEST_DICT_EVENTS events, the store learns a zstd
 * dictionary from the newest of them and events are packed from then on
 * (store.h). With too little to learn from it tries again when the log has
 * doubled. Only packing depends on it, so a failure is logged, not passed
 * on (a failure that spoiled the transaction fails its commit anyway). */
static void event_dict_maybe(bsp_ingest *ing, bsp_txn *txn) {
    if (ing->log_seq < ing->dict_next_try || store_event_packing(ing->st)) return;
    uint64_t t0 = bsp_mono_ns();
    bsp_err rc = store_event_dict_train(txn, INGEST_DICT_SAMPLES);
    if (rc == BSP_OK)
        bsp_info("ingest: events are packed from now on (dictionary learnt in %.0f ms)",
                 (double)(bsp_mono_ns() - t0) / 1e6);
    else if (rc != BSP_EEXISTS)
        bsp_warn("ingest: no event dictionary yet (%s); trying again at %llu events",
                 bsp_err_name(rc), (unsigned long long)ing->log_seq * 2);
    ing->dict_next_try = ing->log_seq * 2;
}

/* The storage form of some profiles, made on a helper thread while the
 * writer stores others: a checkpoint is the one time nothing else is
 * applied (every connection waits for its answer, so the HTTP threads are
 * idle), and printing the changed profiles is most of its work. The helper
 * only reads the profiles; the writer changes nothing until it has joined. */
#define CKPT_HELP_MIN 256 /* changed profiles worth a helper */

typedef struct ckpt_help {
    pentry **entries;
    size_t n;
    bsp_buf text; /* the profiles' texts, one after another */
    size_t *ends; /* where each ends in text */
    bsp_err rc;
} ckpt_help;

static void *ckpt_help_main(void *arg) {
    ckpt_help *h = arg;
    for (size_t i = 0; i < h->n && !h->rc; i++) {
        h->rc = profile_to_json(h->entries[i]->profile, &h->text);
        h->ends[i] = h->text.len;
    }
    return NULL;
}

static bsp_err store_one(bsp_ingest *ing, bsp_txn *txn, pentry *e, const char *text, size_t len) {
    bsp_err rc = store_profile_put(txn, e->pid, text, len);
    writer_stale(ing, fresh_pid_key(e->pid));
    e->dirty = false;
    return rc;
}

/* The timeline entries since the last checkpoint: one run a profile (all
 * of them are newer than anything stored), in key order, so each timeline
 * page is visited once. */
static bsp_err store_links(bsp_ingest *ing, bsp_txn *txn) {
    if (!ing->links_len) return BSP_OK;
    qsort(ing->links, ing->links_len, sizeof *ing->links, link_order);
    uint64_t *seqs = malloc(ing->links_len * sizeof *seqs);
    if (!seqs) return BSP_ENOMEM;
    bsp_err rc = BSP_OK;
    for (size_t i = 0; i < ing->links_len && !rc;) {
        uint64_t pid = ing->links[i].pid;
        size_t n = 0;
        for (; i < ing->links_len && ing->links[i].pid == pid; i++)
            if (n == 0 || seqs[n - 1] != ing->links[i].seq) seqs[n++] = ing->links[i].seq;
        rc = store_event_links(txn, pid, seqs, n);
    }
    free(seqs);
    return rc;
}

/* Prints and stores entries[0, n) and the timeline entries: a helper
 * prints the later part of the profiles while the writer prints and stores
 * the earlier part and the timeline, then the writer stores what the
 * helper printed. */
static bsp_err store_profiles_and_links(bsp_ingest *ing, bsp_txn *txn, pentry **entries, size_t n) {
    ckpt_help h = {.rc = BSP_OK};
    size_t mine = n;
    pthread_t helper;
    bool helped = false;
    if (n >= CKPT_HELP_MIN && (h.ends = malloc(n * sizeof *h.ends)) != NULL) {
        mine = n * 2 / 5; /* the writer also stores everything and the links */
        h.entries = entries + mine;
        h.n = n - mine;
        helped = pthread_create(&helper, NULL, ckpt_help_main, &h) == 0;
        if (!helped) mine = n;
    }
    bsp_buf text = {0};
    bsp_err rc = BSP_OK;
    for (size_t i = 0; i < mine && !rc; i++) {
        bsp_buf_reset(&text);
        rc = profile_to_json(entries[i]->profile, &text);
        if (!rc) rc = store_one(ing, txn, entries[i], text.data, text.len);
    }
    bsp_buf_free(&text);
    if (!rc) rc = store_links(ing, txn);
    if (helped) {
        pthread_join(helper, NULL);
        if (!rc) rc = h.rc;
        for (size_t i = 0, start = 0; i < h.n && !rc; start = h.ends[i++])
            rc = store_one(ing, txn, h.entries[i], h.text.data + start, h.ends[i] - start);
    }
    bsp_buf_free(&h.text);
    free(h.ends);
    return rc;
}

bsp_err writer_checkpoint(bsp_ingest *ing, bsp_txn *txn) {
    /* The changed profiles still cached (not merged away, not written). */
    size_t n = 0;
    pentry **entries = ing->dirty_len ? malloc(ing->dirty_len * sizeof *entries) : NULL;
    if (ing->dirty_len && !entries) return BSP_ENOMEM;
    for (size_t i = 0; i < ing->dirty_len; i++) {
        pentry *e = pcache_get(&ing->cache, ing->dirty[i]);
        if (e && e->dirty) entries[n++] = e;
    }
    bsp_err rc = store_profiles_and_links(ing, txn, entries, n);
    free(entries);
    ing->dirty_len = 0;
    if (!rc) rc = put_seq(txn, META_APPLIED_SEQ, ing->log_seq);
    /* Everything the WAL holds is stored by this commit: retire its records.
     * Not while the stored log is replayed: they are not replayed yet. */
    if (!rc) rc = put_seq(txn, META_WAL_GEN, ing->wal.gen + (ing->replaying_log ? 0 : 1));
    if (!rc) event_dict_maybe(ing, txn);
    return rc;
}

void writer_checkpoint_done(bsp_ingest *ing) {
    if (!ing->replaying_log) wal_restart(&ing->wal, ing->wal.gen + 1);
    ing->links_len = 0;
    ing->ckpt_seq = ing->log_seq;
    ing->last_ckpt_ns = bsp_mono_ns();
    atomic_fetch_add(&ing->m_checkpoints, 1);
    fresh_committed(&ing->fresh);
    writer_stale_stored(ing);
    overlay_checkpointed(&ing->over, bsp_now_ms());
    pthread_mutex_lock(&ing->mu);
    ing->checkpointed_seq = ing->ckpt_seq;
    pthread_cond_broadcast(&ing->cv_synced);
    pthread_mutex_unlock(&ing->mu);
}

/* --- applying ------------------------------------------------------------- */

typedef struct learn_ctx {
    bsp_ingest *ing;
    bsp_txn *txn;
    bsp_err rc;
} learn_ctx;

void writer_forget_learnt(bsp_ingest *ing) {
    if (ing->learnt) memset(ing->learnt, 0, LEARN_MEMO * sizeof *ing->learnt);
}

/* The memo of facts merged before: hashes of one product's learnt facts
 * (learn_product) and of all an event teaches (catalog_event_facts), in
 * one direct-mapped table. Most product events repeat what the catalog
 * already has, and the memo spares them building the products, and a read,
 * a parse and a print of each stored one. */
static uint64_t *learnt_slot(bsp_ingest *ing, uint64_t facts_hash) {
    if (!ing->learnt && !(ing->learnt = calloc(LEARN_MEMO, sizeof *ing->learnt))) return NULL;
    uint64_t h = facts_hash | 1;
    return &ing->learnt[h & (LEARN_MEMO - 1)];
}

static bool learnt_known(bsp_ingest *ing, uint64_t facts_hash) {
    const uint64_t *slot = learnt_slot(ing, facts_hash);
    return slot && *slot == (facts_hash | 1);
}

static void learnt_note(bsp_ingest *ing, uint64_t facts_hash) {
    uint64_t *slot = learnt_slot(ing, facts_hash);
    if (slot) *slot = facts_hash | 1;
}

/* Whether these exact facts were merged before; remembers them if not. */
static bool learnt_before(bsp_ingest *ing, uint64_t facts_hash) {
    if (learnt_known(ing, facts_hash)) return true;
    learnt_note(ing, facts_hash);
    return false;
}

/* Merges product facts an event carried into the catalog, writing only when
 * something changed and never over a product the shop sent explicitly. */
static void learn_product(void *arg, cJSON *learnt) {
    learn_ctx *lc = arg;
    const char *id = json_get_string(learnt, "id");
    bsp_slice raw = {0};
    cJSON *stored = NULL, *merged = NULL;
    bsp_buf text = {0};
    if (lc->rc || !id) goto done;
    /* The facts without the time they were seen, which every event changes. */
    cJSON *seen_at = cJSON_DetachItemFromObjectCaseSensitive(learnt, "updated_at");
    uint64_t facts = json_hash(learnt);
    if (seen_at) cJSON_AddItemToObject(learnt, "updated_at", seen_at);
    if (learnt_before(lc->ing, facts)) goto done;
    bsp_err rc = store_product_get(lc->txn, id, &raw);
    if (rc == BSP_OK) {
        stored = json_parse(raw.data, raw.len, BSP_JSON_MAX_DEPTH, NULL);
        const char *source = json_get_string(stored, "source");
        if (stored && (!source || strcmp(source, "events") != 0)) goto done;
    } else if (rc != BSP_ENOTFOUND) {
        lc->rc = rc;
        goto done;
    }
    merged = catalog_merge_learnt(stored, learnt);
    if (!merged || json_write(&text, merged) != BSP_OK)
        lc->rc = BSP_ENOMEM;
    else if (!(rc == BSP_OK && text.len == raw.len && !memcmp(text.data, raw.data, raw.len)))
        lc->rc = store_product_put(lc->txn, id, text.data, text.len);
done:
    bsp_buf_free(&text);
    cJSON_Delete(merged);
    cJSON_Delete(stored);
    cJSON_Delete(learnt);
}

/* Learns the products ev carries, unless an event with the same facts was
 * learnt from before (remembered only once its products are merged). */
static bsp_err writer_learn(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev) {
    uint64_t facts = ev->facts_known ? ev->facts : catalog_event_facts(ev);
    if (!facts || learnt_known(ing, facts)) return BSP_OK;
    learn_ctx lc = {ing, txn, BSP_OK};
    catalog_learn_from_event(ev, learn_product, &lc);
    if (!lc.rc) learnt_note(ing, facts);
    return lc.rc;
}

/* What applying ev did, computed: the traits profile_apply_event said. */
static ingest_touch touch_of(const bsp_event *ev, uint32_t computed) {
    ingest_touch t = {.flags = INGEST_TOUCH_EVENT, .computed = computed};
    if (ev->type == BSP_EV_IDENTIFY || ev->context_parts.traits) t.flags |= INGEST_TOUCH_TRAITS;
    if (ev->type == BSP_EV_TRACK && ev->name) t.names = ingest_name_bit(ev->name);
    return t;
}

bsp_err apply_logged_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t seq) {
    uint64_t pid;
    bsp_err rc = identity_resolve_event(ing, txn, ev, &pid);
    pentry *e = NULL;
    if (!rc) rc = writer_profile(ing, txn, pid, &e);
    if (rc) return rc;
    if (profile_applied_seq(e->profile) < seq) {
        uint32_t computed = profile_apply_event(e->profile, ev);
        profile_set_applied_seq(e->profile, seq);
        rc = writer_mark_dirty(ing, e);
        ingest_touch touch = touch_of(ev, computed);
        if (!rc) rc = writer_touch(ing, e, &touch);
    }
    if (!rc) rc = writer_link(ing, pid, seq);
    return rc;
}

/* Stage one of an event: de-duplicate and append to the log (and, in
 * write-ahead mode, to the pending group's records). *seq is the number it
 * got, or 0 for a resend already stored. */
bsp_err writer_log_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t *out_seq) {
    *out_seq = 0;
    /* SDKs resend with the event's own timestamp, so its hour finds them and
     * the ids of one hour sit together on disk. Without a timestamp a resend
     * has a new receipt time: those ids share bucket 0 (exact, but random
     * writes), which hours since 1970 never reach. */
    uint32_t bucket = ev->ts_given && ev->ts_ms >= 3600000 ? (uint32_t)(ev->ts_ms / 3600000) : 0;
    size_t id_len = strlen(ev->message_id);
    uint64_t seq, next = 0;
    /* An id Bespoke generated was never seen by the sender: nothing can
     * resend it, so it is neither looked up nor indexed. Any other id is
     * recorded with the number its event is about to get, in the same
     * lookup that finds a resend. */
    bool want_next = !ev->id_generated || ev->frame;
    bsp_err rc = want_next ? store_event_next_seq(txn, &next) : BSP_OK;
    if (!rc && !ev->id_generated) rc = store_msgid_add(txn, bucket, ev->message_id, id_len, next);
    if (rc == BSP_EEXISTS) return BSP_OK;
    if (rc) return rc;
    /* What is stored: the packed form when the submitter made one; of a
     * shared frame, the frame itself for its first member stored, a
     * reference back to that one for the others. */
    const char *bytes = ev->packed ? ev->packed : ev->text;
    size_t len = ev->packed ? ev->packed_len : ev->text_len;
    char ref[STORE_FRAME_ROOM];
    if (ev->frame)
        store_frame_value(ev->frame->bytes, ev->frame->len, ev->frame->holder, next,
                          ev->frame_index, ref, &bytes, &len);
    rc = store_event_append(txn, 0, bytes, len, &seq);
    if (!rc && want_next && seq != next) rc = BSP_ESTORE; /* cannot happen: one txn */
    if (!rc && ev->frame && !ev->frame->holder) ev->frame->holder = seq;
    unsigned flags = (ev->ts_given ? WAL_TS_GIVEN : 0) | (ev->id_generated ? WAL_ID_GENERATED : 0);
    if (!rc && ing->wal_live) rc = wal_add(&ing->wal, seq, flags, bytes, len);
    if (rc) return rc;
    ing->log_seq = seq;
    *out_seq = seq;
    return BSP_OK;
}

/* Stage two: apply the logged event (profile, identity, timeline) and learn
 * the products it names. */
bsp_err writer_apply_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, uint64_t seq) {
    bsp_err rc = apply_logged_event(ing, txn, ev, seq);
    return rc ? rc : writer_learn(ing, txn, ev);
}

bsp_err writer_ingest_event(bsp_ingest *ing, bsp_txn *txn, const bsp_event *ev, bool *dup) {
    uint64_t seq;
    bsp_err rc = writer_log_event(ing, txn, ev, &seq);
    *dup = !rc && seq == 0;
    if (rc || *dup) return rc;
    return writer_apply_event(ing, txn, ev, seq);
}

/* --- recovery ------------------------------------------------------------- */

typedef struct logged {
    uint64_t seq;
    char *text;
    size_t len;
} logged;

typedef struct chunk {
    logged items[REPLAY_CHUNK];
    size_t count;
} chunk;

static bsp_err collect(void *ctx, uint64_t seq, bsp_slice json) {
    chunk *c = ctx;
    if (c->count == REPLAY_CHUNK) return BSP_EEXISTS; /* full: stop the scan */
    char *copy = malloc(json.len + 1);
    if (!copy) return BSP_ENOMEM;
    memcpy(copy, json.data, json.len);
    copy[json.len] = '\0';
    /* The chunk owns copy now; replay_chunk frees it. */
    c->items[c->count].seq = seq;
    c->items[c->count].text = copy;
    c->items[c->count].len = json.len;
    c->count++;
    return BSP_OK;
}

/* An event back from its stored text; false (warned) if it is unreadable. */
static bool event_of_logged(const char *text, size_t len, uint64_t seq, const char *where,
                            bsp_event *ev) {
    bsp_error err;
    bsp_err rc = event_from_text(text, len, NULL, bsp_now_ms(), ev, &err);
    if (rc)
        bsp_warn("%s: event %llu unreadable (%s), skipped", where, (unsigned long long)seq,
                 err.message);
    return rc == BSP_OK;
}

static bsp_err replay_one(bsp_ingest *ing, bsp_txn *txn, const logged *l) {
    bsp_event ev;
    if (!event_of_logged(l->text, l->len, l->seq, "replay", &ev)) return BSP_OK;
    bsp_err rc = apply_logged_event(ing, txn, &ev, l->seq);
    event_free(&ev);
    return rc;
}

/* Replays one chunk after `from`; sets *next past it, *done at the end. */
static bsp_err replay_chunk(bsp_ingest *ing, bsp_txn *txn, uint64_t from, uint64_t *next,
                            size_t *replayed) {
    chunk *c = calloc(1, sizeof *c);
    if (!c) return BSP_ENOMEM;
    bsp_err rc = store_events_scan(txn, from, collect, c);
    if (rc == BSP_EEXISTS) rc = BSP_OK;
    for (size_t i = 0; i < c->count && !rc; i++) {
        rc = replay_one(ing, txn, &c->items[i]);
        ing->log_seq = c->items[i].seq;
    }
    *next = c->count ? c->items[c->count - 1].seq + 1 : 0;
    *replayed = c->count;
    for (size_t i = 0; i < c->count; i++)
        free(c->items[i].text);
    free(c);
    return rc;
}

/* Ends a recovery transaction: hooks, checkpoint, durable commit. */
static bsp_err recover_commit(bsp_ingest *ing, bsp_txn *txn, bsp_err rc) {
    if (!rc) rc = writer_touched_hooks(ing, txn);
    if (!rc) rc = writer_checkpoint(ing, txn);
    if (rc)
        store_txn_abort(txn);
    else
        rc = store_txn_commit(txn);
    if (rc) {
        writer_touched_drop(ing);
        pcache_clear(&ing->cache);
        ing->dirty_len = ing->links_len = 0;
        return rc;
    }
    writer_touched_publish(ing);
    writer_checkpoint_done(ing);
    return BSP_OK;
}

/* Replays the stored log after the last checkpoint, chunk by chunk. */
static bsp_err recover_log_chunks(bsp_ingest *ing, size_t *n, size_t *total) {
    do {
        bsp_txn *txn;
        bsp_err rc = store_txn_begin(ing->st, true, &txn);
        if (rc) return rc;
        ing->log_seq = ing->ckpt_seq = get_seq(txn, META_APPLIED_SEQ);
        ing->wal.gen = get_seq(txn, META_WAL_GEN);
        uint64_t next;
        rc = replay_chunk(ing, txn, ing->ckpt_seq + 1, &next, n);
        if ((rc = recover_commit(ing, txn, rc)) != BSP_OK) return rc;
        *total += *n;
    } while (*n == REPLAY_CHUNK);
    return BSP_OK;
}

/* The stored log replayed. Its commits keep the stored WAL generation:
 * should the process die, or the WAL's own replay fail, after one of
 * them, the WAL's records must still be the live ones. */
static bsp_err recover_log(bsp_ingest *ing, size_t *total) {
    size_t n = 0;
    ing->replaying_log = true;
    bsp_err rc = recover_log_chunks(ing, &n, total);
    ing->replaying_log = false;
    return rc;
}

/* A record that holds a shared frame, kept while the WAL replays for the
 * later records that refer back to it (those of one group follow it). */
typedef struct held_frame {
    uint64_t seq;
    char *bytes;
    size_t len;
} held_frame;

typedef struct wal_replay {
    bsp_ingest *ing;
    bsp_txn *txn;
    bsp_buf unpacked; /* a packed record's JSON */
    held_frame *held; /* the holders read so far, by seq */
    size_t held_n, held_cap;
} wal_replay;

static void wal_replay_free(wal_replay *wr) {
    for (size_t i = 0; i < wr->held_n; i++)
        free(wr->held[i].bytes);
    free(wr->held);
    bsp_buf_free(&wr->unpacked);
}

static const held_frame *held_find(const wal_replay *wr, uint64_t seq) {
    for (size_t i = wr->held_n; i-- > 0;)
        if (wr->held[i].seq == seq) return &wr->held[i];
    return NULL;
}

static bsp_err held_add(wal_replay *wr, uint64_t seq, const char *bytes, size_t len) {
    held_frame *grown = bsp_grow(wr->held, &wr->held_cap, wr->held_n, sizeof *grown, 16);
    if (!grown) return BSP_ENOMEM;
    wr->held = grown;
    char *copy = malloc(len);
    if (!copy) return BSP_ENOMEM;
    memcpy(copy, bytes, len);
    wr->held[wr->held_n++] = (held_frame){.seq = seq, .bytes = copy, .len = len};
    return BSP_OK;
}

/* One WAL record: an acknowledged event the store does not hold yet. It
 * goes the way of a new event (dedup, log, apply), as when it arrived. */
static bsp_err replay_wal_record(void *ctx, uint64_t seq, unsigned flags, const char *text,
                                 size_t len) {
    wal_replay *wr = ctx;
    bsp_slice json;
    uint64_t holder_seq;
    const held_frame *holder = NULL;
    if (store_event_holder(text, len, seq, &holder_seq)) {
        holder = held_find(wr, holder_seq);
    } else if (store_event_holds_frame(text, len)) {
        bsp_err rc = held_add(wr, seq, text, len);
        if (rc) return rc;
    }
    if (store_event_unpack(wr->ing->st, text, len, holder ? holder->bytes : NULL,
                           holder ? holder->len : 0, &wr->unpacked, &json) != BSP_OK) {
        bsp_warn("ingest: wal replay: event %llu does not unpack; skipped",
                 (unsigned long long)seq);
        return BSP_OK;
    }
    bsp_event ev;
    if (!event_of_logged(json.data, json.len, seq, "wal replay", &ev)) return BSP_OK;
    ev.ts_given = flags & WAL_TS_GIVEN;
    ev.id_generated = flags & WAL_ID_GENERATED;
    bool dup;
    bsp_err rc = writer_ingest_event(wr->ing, wr->txn, &ev, &dup);
    event_free(&ev);
    return rc;
}

/* Replays the WAL records of generation gen (those no checkpoint stored)
 * that start before offset limit, and stores them with a checkpoint that
 * retires the generation: no record of gen (such as a failed group's,
 * which starts at the limit) is read again, even where a later group ends
 * where it begins. */
static bsp_err recover_wal(bsp_ingest *ing, uint64_t gen, uint64_t limit, size_t *total) {
    if (ing->wal.fd < 0) {
        bsp_err rc = wal_open(&ing->wal, store_dir(ing->st), ing->write_ahead,
                              !ing->wal_buffered && !ing->wal_sync_ms);
        if (rc == BSP_ENOTFOUND) return BSP_OK;
        if (rc) return rc;
    }
    wal_replay wr = {.ing = ing};
    bsp_err rc = store_txn_begin(ing->st, true, &wr.txn);
    if (rc) return rc;
    size_t n = 0;
    rc = wal_scan(&ing->wal, gen, limit, replay_wal_record, &wr, &n);
    wal_replay_free(&wr);
    /* Committed even with nothing replayed: records of gen beyond the limit
     * (a failed group's) must not become live again when new groups of the
     * same generation are written over the start of the file. */
    rc = recover_commit(ing, wr.txn, rc);
    if (!rc) *total += n;
    return rc;
}

bsp_err writer_recover(bsp_ingest *ing) {
    /* After a failure in this process the file is open and its append
     * position is the end of the last acknowledged group: what lies beyond
     * belongs to the failed group, answered with an error. */
    uint64_t acked_end = ing->wal.fd >= 0 ? ing->wal.off : UINT64_MAX;
    ing->wal_live = false;
    if (ing->open_txn) store_txn_abort(ing->open_txn);
    ing->open_txn = NULL;
    wal_drop(&ing->wal);
    writer_forget_learnt(ing);
    writer_forget_ids(ing);
    writer_touched_drop(ing);
    pcache_clear(&ing->cache);
    ing->dirty_len = ing->links_len = 0;
    /* What readers stamped may be ahead of what is rebuilt: none of it holds. */
    ing->stale_len = ing->stale_published = 0;
    ing->stale_lost = false;
    fresh_bump_all(&ing->fresh);
    /* The generation to replay is the stored one before any checkpoint here. */
    bsp_txn *txn;
    bsp_err rc = store_txn_begin(ing->st, false, &txn);
    if (rc) return rc;
    uint64_t gen = get_seq(txn, META_WAL_GEN);
    store_txn_abort(txn);
    size_t logged_n = 0, wal_n = 0;
    rc = recover_log(ing, &logged_n);
    if (!rc) rc = recover_wal(ing, gen, acked_end, &wal_n);
    if (rc) return rc;
    ing->wal_live = ing->write_ahead;
    wal_set_lazy(&ing->wal, ing->wal_sync_ms);
    atomic_store(&ing->m_wal_direct, ing->wal_live && wal_is_direct(&ing->wal));
    pthread_mutex_lock(&ing->mu);
    ing->committed_seq = ing->log_seq;
    pthread_mutex_unlock(&ing->mu);
    if (logged_n) bsp_info("ingest: replayed %zu logged events into profiles", logged_n);
    if (wal_n) bsp_info("ingest: replayed %zu events from the write-ahead file", wal_n);
    return BSP_OK;
}
