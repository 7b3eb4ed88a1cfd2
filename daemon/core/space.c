// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/space.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "catalogue.h"
#include "configfile.h"
#include "core/fill.h"
#include "io.h"
#include "log.h"
#include "core/loop.h"
#include "macros.h"
#include "core/models.h"
#include "core/spacepolicy.h"
#include "core/spacescan.h"
#include "core/workpool.h"

#define PAGE		 4096ULL
#define SAVE_INTERVAL_MS 5000

/* A model someone is filling whole (a warm): never culled or purged meanwhile. */
struct space_hold {
	struct space_hold *next;
	char *model;
	unsigned count;
};

struct space {
	struct loop *loop;
	const struct config *cfg;
	struct models *models;
	struct fill *fill;
	const struct space_kernel_ops *ops;
	void *ops_userdata;
	struct space_entry *entries;
	struct space_state pins; /* runtime pins (records unused) */
	char *usage_path, *meta_dir, *store_dir;
	bool dirty;
	uint64_t last_save_ms, last_purge_ms;
	struct space_hold *holds;
	int cull_timer;
	struct space_report report;
	struct workpool *scan_pool; /* one thread: the periodic walk */
	struct scan_job *job;	    /* the walk in flight, or NULL */
	uint64_t scan_seq;	    /* of the last scan planned */
	uint64_t applied_seq;	    /* of the last scan applied */
	struct space_wait *pending; /* waiting for a walk not started yet */
	bool started;		    /* space_new succeeded: the usage file is saved at the end */
};

/* ---- time and names ---- */

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool runtime_pinned(const struct space *sp, const char *model)
{
	for (size_t i = 0; i < sp->pins.n_pins; i++)
		if (streq(sp->pins.pins[i], model))
			return true;
	return false;
}

static bool config_pinned(const struct space *sp, const char *model)
{
	const struct model_conf *mc = config_find_model(sp->cfg, model);

	return mc && mc->pin;
}

/* The cachefiles volume key of a model as the daemon mounts it (configfile.h). */
static void model_volume(const struct space *sp, const char *model, char *buf, size_t len)
{
	config_model_volume(sp->cfg, model, buf, len);
}

/* ---- entries ---- */

static struct space_entry *entry_get(struct space *sp, const char *volume, size_t vlen,
				     const char *key, size_t klen, int64_t last_use)
{
	return space_entry_get(&sp->entries, volume, vlen, key, klen, last_use);
}

struct space_entry *space_use_open(struct space *sp, const char *volume, size_t volume_len,
				   const char *key, size_t key_len, int fd)
{
	struct space_entry *e = entry_get(sp, volume, volume_len, key, key_len, wall_ms());

	if (!e)
		return NULL;
	e->in_use++;
	e->fd = fd;
	e->last_use = wall_ms();
	e->used_scan = sp->scan_seq;
	sp->dirty = true;
	return e;
}

void space_use_touch(struct space_entry *e)
{
	if (e)
		e->last_use = wall_ms();
}

void space_use_error(struct space_entry *e)
{
	if (e)
		e->errors++;
}

void space_use_close(struct space *sp, struct space_entry *e)
{
	if (!e)
		return;
	if (e->in_use && --e->in_use == 0)
		e->fd = -1;
	e->last_use = wall_ms();
	e->used_scan = sp->scan_seq;
	sp->dirty = true;
}

/* ---- the usage file ---- */

static int save_usage(struct space *sp)
{
	struct space_state st = { 0 };
	_cleanup_free_ char *text = NULL;
	int r = 0;

	for (size_t i = 0; i < sp->pins.n_pins && r >= 0; i++)
		r = space_state_add_pin(&st, sp->pins.pins[i]);
	for (struct space_entry *e = sp->entries; e && r >= 0; e = e->next)
		r = space_state_add_record(&st, e->volume, e->key, e->last_use);
	if (r >= 0 && !(text = space_state_format(&st)))
		r = -ENOMEM;
	space_state_free(&st);
	if (r < 0)
		return r;
	r = write_file_atomic(sp->usage_path, text, strlen(text));
	if (r < 0)
		return r;
	sp->dirty = false;
	sp->last_save_ms = loop_now_ms();
	return 0;
}

static void save_usage_logged(struct space *sp)
{
	static bool warned;
	int r = save_usage(sp);

	if (r < 0 && !warned) {
		warned = true;
		log_warn_errno(r,
			       "cannot write %s: last uses and pins will not survive a restart "
			       "(logged once)",
			       sp->usage_path);
	}
}

static int load_usage(struct space *sp)
{
	struct space_state st = { 0 };
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = open(sp->usage_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	unsigned bad = 0, first = 0;
	struct stat s;
	int r;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &s) < 0)
		return -errno;
	if (s.st_size > 64 << 20)
		return -EFBIG;
	text = calloc(1, (size_t)s.st_size + 1);
	if (!text)
		return -ENOMEM;
	if (pread_full(fd, text, (size_t)s.st_size, 0) != s.st_size)
		return -EIO;
	/* A NUL byte (a torn write) ends the text: what follows is lost, what precedes kept. */
	r = space_state_parse(text, &st, &bad, &first);
	if (r < 0)
		return r;
	if (bad)
		log_warn("%s: %u damaged line(s), the first is line %u: those records are "
			 "dropped (their files count as used when first seen again)",
			 sp->usage_path, bad, first);
	for (size_t i = 0; i < st.n_pins; i++)
		space_state_add_pin(&sp->pins, st.pins[i]);
	for (size_t i = 0; i < st.n_records; i++) {
		const struct space_record *rec = &st.records[i];
		entry_get(sp, rec->volume, strlen(rec->volume), rec->key, strlen(rec->key),
			  rec->last_use);
	}
	space_state_free(&st);
	return 0;
}

/* ---- scanning the cache: <dir>/cache/I<volume>/@xx/D<key>, and the front end's files ----
 *
 * The walk reads every fan-out directory and stats every file: on a cold page cache that is
 * disk I/O for seconds, so every walk (the first at start, the periodic ones, those asked for)
 * runs in a thread of its own (spacescan.h) and the loop applies the list it returns. status,
 * evict and GET /models wait for a walk there that starts after they ask (space_after_scan).
 */

/* Someone waiting for a walk planned after they asked (space_after_scan). */
struct space_wait {
	struct space_wait *next;
	space_scanned_fn fn;
	void *ctx;
};

struct scan_job {
	struct space_scan scan;
	struct space_wait *waiters; /* called once it is applied */
	/* What the scan thread reads: copies, or what lives until space_stop. */
	char *store_dir; /* NULL: not cachefiles' store */
	const struct space_kernel_ops *ops;
	void *ops_userdata;
	struct space *sp; /* the loop thread's only */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool finished;
};

static void on_listed_file(void *ctx, const struct space_file_info *fi)
{
	struct space_scan *s = ctx;

	if (fi->leftover)
		space_scan_add_leftover(s, fi->key);
	else
		space_scan_add(s, fi->volume, fi->key, NULL, fi->bytes, fi->cached, fi->mtime_ms,
			       true);
}

/* The walk itself, in the scan thread. */
static void scan_walk(struct space_scan *s, const struct space_kernel_ops *ops, void *userdata,
		      const char *store_dir)
{
	if (ops && ops->list_files)
		ops->list_files(userdata, on_listed_file, s);
	/* cachefiles' files can only go through the kernel's cull: without it (ublk mode) they
	 * are not this front end's, and left alone. */
	if (store_dir)
		space_scan_store(s, store_dir);
	space_scan_measure_open(s);
}

static void scan_plan(struct space *sp, struct space_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->seq = ++sp->scan_seq;
	space_scan_add_open(s, sp->entries);
}

/* Apply a finished walk; the front end's leftovers are removed here, in the loop thread, where
 * it knows which of its files are open. */
static void scan_apply(struct space *sp, const struct space_scan *s)
{
	if (s->failed) {
		log_warn("cache scan: out of memory; the usage records are left as they were");
		return;
	}
	if (space_scan_apply(&sp->entries, s))
		sp->dirty = true;
	for (size_t i = 0; i < s->n_leftovers; i++)
		if (sp->ops && sp->ops->remove_leftover)
			sp->ops->remove_leftover(sp->ops_userdata, s->leftovers[i]);
	sp->applied_seq = s->seq;
}

static void waits_free(struct space_wait *w)
{
	while (w) {
		struct space_wait *next = w->next;
		free(w);
		w = next;
	}
}

static void scan_job_free(struct scan_job *job)
{
	if (!job)
		return;
	waits_free(job->waiters);
	space_scan_free(&job->scan);
	free(job->store_dir);
	pthread_mutex_destroy(&job->lock);
	pthread_cond_destroy(&job->cond);
	free(job);
}

static void scan_job_work(void *userdata)
{
	struct scan_job *job = userdata;

	scan_walk(&job->scan, job->ops, job->ops_userdata, job->store_dir);
	pthread_mutex_lock(&job->lock);
	job->finished = true;
	pthread_cond_broadcast(&job->cond);
	pthread_mutex_unlock(&job->lock);
}

static void run_checks(struct space *sp, uint64_t seq);

static int scan_start(struct space *sp);

static void scan_job_done(void *userdata)
{
	struct scan_job *job = userdata;
	struct space *sp = job->sp;
	struct space_wait *waiters = job->waiters;
	int r;

	job->waiters = NULL;
	sp->job = NULL;
	scan_apply(sp, &job->scan);
	run_checks(sp, job->scan.seq);
	scan_job_free(job);
	while (waiters) {
		struct space_wait *w = waiters;
		waiters = w->next;
		w->fn(sp, w->ctx);
		free(w);
	}
	/* Those who asked while it ran need a walk that starts after them. */
	if (sp->pending && !sp->job && (r = scan_start(sp)) < 0)
		log_warn_errno(r, "cannot start the cache scan: next time");
}

/* Start the periodic walk in the scan thread. Returns 0, or -errno (nothing started). */
static int scan_start(struct space *sp)
{
	struct scan_job *job;
	int r;

	if (!sp->scan_pool)
		return -ESHUTDOWN; /* stopped */
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->cond, NULL);
	job->sp = sp;
	job->ops = sp->ops;
	job->ops_userdata = sp->ops_userdata;
	if (sp->ops && sp->ops->cull && !(job->store_dir = strdup(sp->store_dir))) {
		scan_job_free(job);
		return -ENOMEM;
	}
	scan_plan(sp, &job->scan);
	r = workpool_submit(sp->scan_pool, scan_job_work, scan_job_done, job);
	if (r < 0) {
		scan_job_free(job);
		return r;
	}
	sp->job = job;
	job->waiters = sp->pending;
	sp->pending = NULL;
	return 0;
}

struct space_wait *space_after_scan(struct space *sp, space_scanned_fn fn, void *ctx)
{
	struct space_wait *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return NULL;
	w->fn = fn;
	w->ctx = ctx;
	w->next = sp->pending;
	sp->pending = w;
	/* With a walk in flight (it may have passed the files in question), the next one starts
	 * when it ends; failing to start, at the next tick. */
	if (!sp->job && sp->ops && (r = scan_start(sp)) < 0)
		log_warn_errno(r, "cannot start the cache scan: next time");
	return w;
}

void space_wait_cancel(struct space *sp, struct space_wait *w)
{
	struct space_wait **lists[] = { &sp->pending, sp->job ? &sp->job->waiters : NULL };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		for (struct space_wait **pp = lists[i]; pp && *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				free(w);
				return;
			}
}

/* ---- the view the policy works on ---- */

struct view {
	size_t n_files, n_models;
	struct space_entry **entries; /* parallel to files */
	struct space_file *files;
	struct space_model *models;
	const struct catalogue_model **cat; /* parallel to models */
	size_t *owner_pool;
};

static void view_free(struct view *v)
{
	free(v->entries);
	free(v->files);
	free(v->models);
	free(v->cat);
	free(v->owner_pool);
	memset(v, 0, sizeof(*v));
}

static bool model_owns(const struct catalogue_model *m, const char *key)
{
	if (streq(m->name, key))
		return true;
	for (size_t b = 0; b < m->n_blobs; b++)
		if (streq(m->blobs[b].digest, key))
			return true;
	return false;
}

static int view_build(struct space *sp, struct view *v)
{
	const struct catalogue *c = models_catalogue(sp->models);
	size_t n = 0, used = 0;

	memset(v, 0, sizeof(*v));
	for (struct space_entry *e = sp->entries; e; e = e->next)
		n++;
	v->n_files = n;
	v->n_models = c->n_models;
	v->entries = calloc(n + 1, sizeof(*v->entries));
	v->files = calloc(n + 1, sizeof(*v->files));
	v->models = calloc(c->n_models + 1, sizeof(*v->models));
	v->cat = calloc(c->n_models + 1, sizeof(*v->cat));
	v->owner_pool = calloc(n * MAX(c->n_models, 1) + 1, sizeof(*v->owner_pool));
	if (!v->entries || !v->files || !v->models || !v->cat || !v->owner_pool) {
		view_free(v);
		return -ENOMEM;
	}
	for (size_t m = 0; m < c->n_models; m++) {
		v->cat[m] = &c->models[m];
		v->models[m].name = c->models[m].name;
		v->models[m].pinned = config_pinned(sp, c->models[m].name) ||
				      runtime_pinned(sp, c->models[m].name);
		v->models[m].in_use = space_model_holds(sp, c->models[m].name);
	}
	n = 0;
	for (struct space_entry *e = sp->entries; e; e = e->next, n++) {
		struct space_file *f = &v->files[n];

		v->entries[n] = e;
		f->volume = e->volume;
		f->key = e->key;
		f->bytes = e->bytes;
		f->last_use = e->last_use;
		f->in_use = e->in_use;
		f->present = e->present;
		f->owners = &v->owner_pool[used];
		for (size_t m = 0; m < c->n_models; m++)
			if (model_owns(&c->models[m], e->key))
				v->owner_pool[used + f->n_owners++] = m;
		used += f->n_owners;
	}
	space_propagate(v->files, v->n_files, v->models, v->n_models);
	return 0;
}

/* Cull one file through the kernel. Returns 0 (gone: culled or already gone), or -errno. */
static int cull_entry(struct space *sp, struct space_entry *e)
{
	char name[NAME_MAX + 1];
	int r;

	if (!sp->ops)
		return -ENOENT;
	if (e->in_use) /* never: an object is open on it (or being opened) */
		return -EBUSY;
	if (e->listed) {
		r = sp->ops->remove_file ? sp->ops->remove_file(sp->ops_userdata, e->volume, e->key)
					 : -EOPNOTSUPP;
	} else {
		if (!e->dir || !sp->ops->cull)
			return -ENOENT;
		snprintf(name, sizeof(name), "D%s", e->key);
		r = sp->ops->cull(sp->ops_userdata, e->dir, name);
	}
	if (r == -EBUSY)
		sp->report.cull_busy++;
	if (r == 0 || r == -ENOENT || r == -ESTALE) {
		e->present = false;
		e->removed_scan = sp->scan_seq; /* a walk in flight may have seen it */
		return 0;
	}
	return r;
}

static int volume_usage(struct space *sp, uint64_t *used, uint64_t *total)
{
	struct statfs s;

	if (statfs(sp->cfg->cache_dir, &s) < 0)
		return -errno;
	*total = (uint64_t)s.f_blocks * (uint64_t)s.f_frsize;
	*used = (uint64_t)(s.f_blocks - s.f_bfree) * (uint64_t)s.f_frsize;
	return 0;
}

static void remove_meta_copy(struct space *sp, const struct catalogue_model *m)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", sp->meta_dir, m->meta);
	if (unlink(path) == 0)
		log_info("removed the verified metadata copy %s of model %s", path, m->name);
}

/* ---- report (status, /metrics) ---- */

static uint64_t blob_cached(const struct view *v, const char *volume, const char *key,
			    uint64_t size)
{
	uint64_t best = 0, mine = 0;
	bool found = false;

	for (size_t i = 0; i < v->n_files; i++) {
		const struct space_file *f = &v->files[i];
		/* A listed file has a chunk map: what counts is its chunks, not its blocks. */
		uint64_t bytes = v->entries[i]->listed ? v->entries[i]->cached : f->bytes;

		if (!streq(f->key, key) || !(f->present || f->in_use))
			continue;
		if (streq(f->volume, volume)) {
			mine = bytes;
			found = true;
		}
		best = MAX(best, bytes);
	}
	return MIN(found ? mine : best, ALIGN_UP(size, PAGE));
}

static void model_figures(struct space *sp, const struct view *v, size_t m, uint64_t *size,
			  uint64_t *cached)
{
	const struct catalogue_model *cm = v->cat[m];
	const char *own_volume = sp->ops ? sp->ops->file_volume : NULL;
	char volume[128];

	if (own_volume)
		snprintf(volume, sizeof(volume), "%s", own_volume);
	else
		model_volume(sp, cm->name, volume, sizeof(volume));
	*size = *cached = 0;
	for (size_t b = 0; b < cm->n_blobs; b++) {
		const struct catalogue_blob *blob = &cm->blobs[b];
		const char *key =
			blob->role == BLOB_ROLE_META && !own_volume ? cm->name : blob->digest;
		*size += ALIGN_UP(blob->size, PAGE);
		*cached += blob_cached(v, volume, key, blob->size);
	}
}

static void update_report(struct space *sp, const struct view *v)
{
	struct space_report *r = &sp->report;
	struct space_model_report *mr;

	volume_usage(sp, &r->volume_used_bytes, &r->volume_bytes);
	r->high_watermark = sp->cfg->high_watermark;
	r->low_watermark = sp->cfg->low_watermark;
	r->cache_bytes = 0;
	r->files = 0;
	for (size_t i = 0; i < v->n_files; i++)
		if (v->files[i].present) {
			r->cache_bytes += v->files[i].bytes;
			r->files++;
		}
	mr = calloc(v->n_models + 1, sizeof(*mr));
	if (!mr)
		return;
	for (size_t m = 0; m < v->n_models; m++) {
		snprintf(mr[m].name, sizeof(mr[m].name), "%s", v->cat[m]->name);
		snprintf(mr[m].meta, sizeof(mr[m].meta), "%s", v->cat[m]->meta);
		model_figures(sp, v, m, &mr[m].size, &mr[m].cached);
		mr[m].pinned = v->models[m].pinned;
	}
	free(r->models);
	r->models = mr;
	r->n_models = v->n_models;
}

const struct space_report *space_get_report(struct space *sp)
{
	return &sp->report;
}

/* ---- the periodic checks ---- */

static void watermark_cull(struct space *sp, struct view *v)
{
	uint64_t used = 0, total = 0, freed = 0;
	unsigned culled = 0, busy = 0;
	_cleanup_free_ size_t *order = NULL;
	size_t n;
	int r;

	if (volume_usage(sp, &used, &total) < 0)
		return;
	if (!space_over_high(used, total, sp->cfg->high_watermark))
		return;
	order = calloc(v->n_files + 1, sizeof(*order));
	if (!order)
		return;
	n = space_plan_cull(v->files, v->n_files, used, total, sp->cfg->high_watermark,
			    sp->cfg->low_watermark, order);
	for (size_t i = 0; i < n; i++) {
		struct space_entry *e = v->entries[order[i]];
		uint64_t bytes = e->bytes;

		r = cull_entry(sp, e);
		if (r == 0) {
			culled++;
			freed += bytes;
			sp->report.culled_files++;
			sp->report.culled_bytes += bytes;
			log_debug("culled %s/D%s (%" PRIu64 " bytes)", e->volume, e->key, bytes);
		} else {
			busy += r == -EBUSY;
			if (r != -EBUSY)
				log_warn_errno(r, "cannot cull cache file %s/D%s", e->dir, e->key);
		}
	}
	{
		uint64_t after_used = used, after_total = total;
		if (volume_usage(sp, &after_used, &after_total) < 0)
			after_used = used, after_total = total;
		log_info("cache volume %" PRIu64 "%% used (high %u%%, low %u%%): culled %u "
			 "file(s), %" PRIu64 " MiB, least recently used first%s; now %" PRIu64
			 "%% used",
			 total ? used * 100 / total : 0, sp->cfg->high_watermark,
			 sp->cfg->low_watermark, culled, freed >> 20,
			 busy ? " (some in use: skipped)" : "",
			 after_total ? after_used * 100 / after_total : 0);
		if (n == 0 || after_total == 0 ||
		    space_over_high(after_used, after_total, sp->cfg->low_watermark + 1)) {
			static uint64_t warned_ms;
			if (!warned_ms || loop_now_ms() - warned_ms > 60000) {
				warned_ms = loop_now_ms();
				if (n < v->n_files)
					log_warn("cache volume still above the low watermark: the "
						 "rest is pinned or in use (or not cache files)");
			}
		}
	}
}

static void purge_unused(struct space *sp, struct view *v)
{
	int64_t now = wall_ms(), age = (int64_t)sp->cfg->purge_unused_after_ms;
	_cleanup_free_ size_t *order = calloc(v->n_files + 1, sizeof(size_t));
	_cleanup_free_ bool *purged = calloc(v->n_models + 1, sizeof(bool));
	size_t n;

	if (!order || !purged)
		return;
	n = space_plan_purge(v->files, v->n_files, v->models, v->n_models, now, age, order);
	for (size_t i = 0; i < n; i++) {
		struct space_entry *e = v->entries[order[i]];
		const struct space_file *f = &v->files[order[i]];
		uint64_t bytes = e->bytes;

		if (cull_entry(sp, e) < 0)
			continue;
		sp->report.purged_files++;
		sp->report.purged_bytes += bytes;
		for (size_t o = 0; o < f->n_owners; o++)
			purged[f->owners[o]] = true;
		if (f->n_owners == 0)
			log_info("purged cache file %s/D%s of no catalogue model (unused for "
				 "%" PRId64 " s)",
				 e->volume, e->key, (now - e->last_use) / 1000);
	}
	for (size_t m = 0; m < v->n_models; m++) {
		if (!purged[m])
			continue;
		log_info("purged model %s: unused for %" PRId64 " s (purge_unused_after %" PRId64
			 " s)",
			 v->cat[m]->name, (now - v->models[m].last_use) / 1000, age / 1000);
		remove_meta_copy(sp, v->cat[m]);
	}
}

/* Cache files no catalogue model uses (the model was unpublished, or re-published and this is
 * its old version) are removed once nothing has them open. Not while some catalogue file could
 * not be loaded: its model's files would look unused. */
static void retire_unreferenced(struct space *sp, struct view *v)
{
	static uint64_t warned_ms;
	unsigned files = 0;
	uint64_t bytes = 0;

	if (models_catalogue(sp->models)->n_skipped) {
		if (!warned_ms || loop_now_ms() - warned_ms > 600000) {
			warned_ms = loop_now_ms();
			log_warn("%zu catalogue file(s) could not be loaded (see above): cache "
				 "files "
				 "of no loaded model are kept until they load or are removed",
				 models_catalogue(sp->models)->n_skipped);
		}
		return;
	}
	for (size_t i = 0; i < v->n_files; i++) {
		struct space_entry *e = v->entries[i];
		const struct space_file *f = &v->files[i];
		uint64_t b = e->bytes;

		if (f->n_owners || !f->present || f->in_use || f->pinned)
			continue;
		if (cull_entry(sp, e) < 0)
			continue; /* held by the kernel (just unmounted): next time */
		files++;
		bytes += b;
		log_info("removed cache file %s/D%s: no model of the catalogue uses it "
			 "(unpublished, "
			 "or an older version)",
			 e->volume, e->key);
	}
	sp->report.retired_files += files;
	sp->report.retired_bytes += bytes;
}

/* After a scan is applied: the cull, retire and purge decisions, then the report. The files
 * they removed are marked absent (cull_entry) and their records pruned: no second walk. Files
 * that appeared meanwhile are the next scan's. */
static void run_checks(struct space *sp, uint64_t seq)
{
	struct view v;

	if (view_build(sp, &v) < 0)
		return;
	watermark_cull(sp, &v);
	retire_unreferenced(sp, &v);
	if (sp->cfg->purge_unused_after_ms &&
	    loop_now_ms() - sp->last_purge_ms >= sp->cfg->purge_check_every_ms) {
		sp->last_purge_ms = loop_now_ms();
		purge_unused(sp, &v);
	}
	view_free(&v);
	if (space_entries_prune(&sp->entries, seq))
		sp->dirty = true;
	if (view_build(sp, &v) == 0) {
		update_report(sp, &v);
		view_free(&v);
	}
	if (sp->dirty && loop_now_ms() - sp->last_save_ms >= SAVE_INTERVAL_MS)
		save_usage_logged(sp);
}

static void on_cull_timer(struct loop *loop, void *userdata)
{
	struct space *sp = userdata;
	int r;

	if (!sp->ops)
		return; /* before space_set_kernel: a walk without the front end's files would drop
			 * their usage records */
	if (sp->job) {
		/* At most one walk: a slow disk makes the checks less frequent, never piles up
		 * walks. */
		log_debug("cache scan still running at the cull interval: this check is skipped");
		return;
	}
	r = scan_start(sp);
	if (r < 0)
		log_warn_errno(r, "cannot start the cache scan: next time");
}

/* ---- what the operations layer asks: pins, holds, sinks, status, evict ---- */

enum space_pin space_model_pin(const struct space *sp, const char *model)
{
	return (config_pinned(sp, model) ? SPACE_PIN_CONFIG : SPACE_PIN_NONE) |
	       (runtime_pinned(sp, model) ? SPACE_PIN_RUNTIME : SPACE_PIN_NONE);
}

int space_set_pin(struct space *sp, const char *model, bool pin)
{
	int r;

	if (pin) {
		if (runtime_pinned(sp, model))
			return 0;
		r = space_state_add_pin(&sp->pins, model);
		if (r < 0)
			return r;
	} else {
		for (size_t i = 0; i < sp->pins.n_pins; i++)
			if (streq(sp->pins.pins[i], model)) {
				free(sp->pins.pins[i]);
				sp->pins.pins[i] = sp->pins.pins[--sp->pins.n_pins];
				break;
			}
	}
	r = save_usage(sp);
	if (r < 0)
		log_warn_errno(r, "cannot write %s: the %s of %s will not survive a restart",
			       sp->usage_path, pin ? "pin" : "unpin", model);
	return 0;
}

unsigned space_model_holds(const struct space *sp, const char *model)
{
	for (const struct space_hold *h = sp->holds; h; h = h->next)
		if (streq(h->model, model))
			return h->count;
	return 0;
}

int space_model_hold(struct space *sp, const char *model)
{
	struct space_hold *h;

	for (h = sp->holds; h; h = h->next)
		if (streq(h->model, model)) {
			h->count++;
			return 0;
		}
	h = calloc(1, sizeof(*h));
	if (!h || !(h->model = strdup(model))) {
		free(h);
		return -ENOMEM;
	}
	h->count = 1;
	h->next = sp->holds;
	sp->holds = h;
	return 0;
}

void space_model_release(struct space *sp, const char *model)
{
	for (struct space_hold **pp = &sp->holds; *pp; pp = &(*pp)->next) {
		struct space_hold *h = *pp;
		if (!streq(h->model, model))
			continue;
		if (--h->count == 0) {
			*pp = h->next;
			free(h->model);
			free(h);
		}
		return;
	}
}

struct fill_sink *space_find_sink(struct space *sp, const struct catalogue_model *m,
				  const struct catalogue_blob *b)
{
	struct fill_sink *s;
	char volume[128];

	if (!sp->ops)
		return NULL;
	if (sp->ops->open_sink)
		return sp->ops->open_sink(sp->ops_userdata, b);
	if (!sp->ops->find_sink)
		return NULL;
	model_volume(sp, m->name, volume, sizeof(volume));
	s = sp->ops->find_sink(sp->ops_userdata, volume,
			       b->role == BLOB_ROLE_META ? m->name : b->digest);
	if (s)
		return s;
	/* Mounted by hand without a domain (mount -o fsid=NAME): its own volume. */
	snprintf(volume, sizeof(volume), "erofs,%s", m->name);
	return sp->ops->find_sink(sp->ops_userdata, volume,
				  b->role == BLOB_ROLE_META ? m->name : b->digest);
}

void space_put_sink(struct space *sp, struct fill_sink *s)
{
	if (!s)
		return;
	if (sp->ops && sp->ops->put_sink)
		sp->ops->put_sink(sp->ops_userdata, s);
	else
		fill_sink_unref(s);
}

bool space_sinks_without_mount(const struct space *sp)
{
	return sp->ops && sp->ops->open_sink;
}

bool space_model_device(const struct space *sp, const char *model, char *source, size_t len)
{
	if (len)
		source[0] = '\0';
	return sp->ops && sp->ops->model_device &&
	       sp->ops->model_device(sp->ops_userdata, model, source, len);
}

int space_status_now(struct space *sp, struct space_model_status **out, size_t *n_out)
{
	struct space_model_status *st;
	struct view v;

	models_resolve(sp->models, "", 0, NULL); /* re-reads the catalogue if it changed */
	if (view_build(sp, &v) < 0)
		return -ENOMEM;
	update_report(sp, &v);
	st = calloc(v.n_models + 1, sizeof(*st));
	if (!st) {
		view_free(&v);
		return -ENOMEM;
	}
	for (size_t m = 0; m < v.n_models; m++) {
		st[m].model = v.cat[m];
		st[m].last_use_ms = v.models[m].last_use;
		model_figures(sp, &v, m, &st[m].size, &st[m].cached);
		for (size_t i = 0; i < v.n_files; i++)
			for (size_t o = 0; o < v.files[i].n_owners; o++)
				if (v.files[i].owners[o] == m) {
					st[m].errors += v.entries[i]->errors;
					st[m].open_objects += v.entries[i]->in_use;
				}
	}
	*n_out = v.n_models;
	*out = st;
	view_free(&v);
	return 0;
}

int space_evict(struct space *sp, const struct catalogue_model *m, struct space_evict_result *res)
{
	struct view v;
	size_t idx = 0;
	int r;

	memset(res, 0, sizeof(*res));
	if (space_model_pin(sp, m->name) != SPACE_PIN_NONE)
		return -EPERM;
	if ((r = view_build(sp, &v)) < 0)
		return r;
	while (idx < v.n_models && v.cat[idx] != m)
		idx++;
	if (idx < v.n_models && v.models[idx].busy) {
		view_free(&v);
		return -EBUSY;
	}
	for (size_t i = 0; i < v.n_files; i++) {
		const struct space_file *f = &v.files[i];
		bool mine = false;
		uint64_t b = f->bytes;

		for (size_t o = 0; o < f->n_owners; o++)
			mine |= f->owners[o] == idx;
		if (!mine || !f->present)
			continue;
		if (f->pinned) {
			res->kept++;
			continue;
		}
		if (cull_entry(sp, v.entries[i]) == 0) {
			res->files++;
			res->bytes += b;
		} else {
			res->busy++;
		}
	}
	view_free(&v);
	sp->report.evicted_files += res->files;
	sp->report.evicted_bytes += res->bytes;
	log_info("evicted model %s: %u file(s), %" PRIu64 " bytes (blobcachectl evict)%s", m->name,
		 res->files, res->bytes, res->busy ? "; some in use, kept" : "");
	if (res->busy)
		return -EBUSY;
	remove_meta_copy(sp, m);
	return 0;
}

/* ---- life cycle ---- */

int space_new(struct loop *loop, const struct config *cfg, struct models *models, struct fill *fill,
	      struct space **out)
{
	struct space *sp = calloc(1, sizeof(*sp));
	int r;

	if (!sp)
		return -ENOMEM;
	sp->loop = loop;
	sp->cfg = cfg;
	sp->models = models;
	sp->fill = fill;
	sp->cull_timer = -1;
	if (asprintf(&sp->usage_path, "%s/usage", cfg->state_dir) < 0 ||
	    asprintf(&sp->meta_dir, "%s/meta", cfg->state_dir) < 0 ||
	    asprintf(&sp->store_dir, "%s/cache", cfg->cache_dir) < 0) {
		space_free(sp);
		return -ENOMEM;
	}
	/* The kernel's cull acts in the current directory, which the loop thread changes right
	 * before each cull: every other path in the daemon is absolute (config_validate). */
	if (chdir("/") < 0)
		log_warn_errno(errno, "chdir /");
	r = load_usage(sp);
	if (r < 0)
		log_warn_errno(r, "cannot read %s: starting without usage records", sp->usage_path);
	/* A thread of its own, not the fill pool's: those can be blocked for a deadline on a hung
	 * origin, and the walk must not wait behind them, nor hold one of them on a slow disk. */
	r = workpool_new(loop, "space-scan", 1, &sp->scan_pool);
	if (r < 0) {
		space_free(sp);
		return log_error_errno(r, "cannot start the cache scan thread");
	}
	r = sp->cull_timer = loop_add_periodic(loop, cfg->cull_interval_ms, on_cull_timer, sp);
	if (r < 0) {
		space_free(sp);
		return log_error_errno(r, "cannot start the cache space manager");
	}
	sp->last_purge_ms = loop_now_ms() - cfg->purge_check_every_ms; /* first check soon */
	log_info("cache space: cull above %u%% of the volume down to %u%%, checked every %" PRIu64
		 " ms; purge of unused models %s",
		 cfg->high_watermark, cfg->low_watermark, cfg->cull_interval_ms,
		 cfg->purge_unused_after_ms ? "on" : "off");
	sp->started = true;
	*out = sp;
	return 0;
}

void space_set_kernel(struct space *sp, const struct space_kernel_ops *ops, void *userdata)
{
	struct view v;
	int r;

	sp->ops = ops;
	sp->ops_userdata = userdata;
	/* The first walk waits for the front end: it knows where its files are (a walk without
	 * them would drop their usage records). It runs in the scan thread like every other: at a
	 * restart the page cache may have lost those directories, and the loop must answer the
	 * requests the kernel sends again after `restore` meanwhile. Until it is applied the
	 * report has the models' sizes and nothing cached (space_scanned() says so). */
	r = scan_start(sp);
	if (r < 0)
		log_warn_errno(r, "cannot start the cache scan: next time");
	if (view_build(sp, &v) == 0) {
		update_report(sp, &v);
		view_free(&v);
	}
}

bool space_scanned(const struct space *sp)
{
	return sp->applied_seq > 0;
}

void space_stop(struct space *sp)
{
	struct scan_job *job;
	struct timespec deadline;
	int r = 0;

	if (!sp)
		return;
	if (sp->cull_timer >= 0) {
		loop_remove_fd(sp->loop, sp->cull_timer);
		sp->cull_timer = -1;
	}
	job = sp->job;
	sp->job = NULL;
	if (job) {
		/* The walk reads the front end's directory name: wait for it before the front end
		 * goes. A walk of a local directory ends; a dead disk is not waited for beyond 10 s
		 * (the job is then left to the exiting process). */
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 10;
		pthread_mutex_lock(&job->lock);
		while (!job->finished && r == 0)
			r = pthread_cond_timedwait(&job->cond, &job->lock, &deadline);
		pthread_mutex_unlock(&job->lock);
		if (!job->finished) {
			log_warn("stopping with the cache scan still running after 10 s");
			job = NULL;
		}
	}
	/* A finished job's completion is dropped with the pool: it is freed here, and nobody
	 * waiting for a walk is called any more. */
	workpool_free(sp->scan_pool);
	sp->scan_pool = NULL;
	scan_job_free(job);
	waits_free(sp->pending);
	sp->pending = NULL;
}

void space_free(struct space *sp)
{
	if (!sp)
		return;
	space_stop(sp);
	if (sp->started)
		save_usage_logged(sp);
	while (sp->holds) {
		struct space_hold *h = sp->holds;
		sp->holds = h->next;
		free(h->model);
		free(h);
	}
	while (sp->entries) {
		struct space_entry *e = sp->entries;
		sp->entries = e->next;
		space_entry_free(e);
	}
	space_state_free(&sp->pins);
	free(sp->report.models);
	free(sp->usage_path);
	free(sp->meta_dir);
	free(sp->store_dir);
	free(sp);
}
