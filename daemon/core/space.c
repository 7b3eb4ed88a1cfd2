// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/space.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libmount.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "catalogue.h"
#include "configfile.h"
#include "ops/control.h"
#include "core/fill.h"
#include "io.h"
#include "log.h"
#include "core/loop.h"
#include "macros.h"
#include "core/models.h"
#include "core/mountinfo.h"
#include "core/spacepolicy.h"
#include "core/workpool.h"

#define PAGE		   4096ULL
#define SAVE_INTERVAL_MS   5000
#define WARM_WINDOW	   8   /* chunk requests a warm keeps in flight */
#define WARM_PROGRESS_MS   250 /* progress line period */
#define WARM_FIND_RETRY_MS 100 /* after the private mount: wait for the blobs' OPENs */
#define WARM_FIND_TRIES	   100

struct space_entry {
	struct space_entry *next;
	char *volume, *key;
	char *dir; /* fan-out directory holding the file, when found */
	uint64_t bytes;
	int64_t last_use;
	unsigned in_use;
	int fd; /* of the open object, -1 */
	bool present;
	unsigned errors;
};

struct warm;

struct space {
	struct loop *loop;
	const struct config *cfg;
	struct models *models;
	struct fill *fill;
	const struct space_kernel_ops *ops;
	void *ops_userdata;
	struct space_entry *entries;
	struct space_state pins; /* runtime pins (records unused) */
	char *usage_path, *meta_dir, *store_dir, *warm_dir;
	bool dirty;
	uint64_t last_save_ms, last_purge_ms;
	struct warm *warms;
	struct workpool *pool;
	int cull_timer;
	struct space_report report;
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

/* The cachefiles volume key of a model: "erofs," + its domain_id option, or its name. */
static void model_volume(const struct space *sp, const char *model, char *buf, size_t len)
{
	const struct model_conf *mc = config_find_model(sp->cfg, model);
	const char *dom = mc && mc->options ? strstr(mc->options, "domain_id=") : NULL;

	if (dom && (dom == mc->options || dom[-1] == ',')) {
		dom += strlen("domain_id=");
		snprintf(buf, len, "erofs,%.*s", (int)strcspn(dom, ","), dom);
	} else {
		snprintf(buf, len, "erofs,%s", model);
	}
}

/* ---- entries ---- */

static struct space_entry *entry_find(struct space *sp, const char *volume, size_t vlen,
				      const char *key, size_t klen)
{
	for (struct space_entry *e = sp->entries; e; e = e->next)
		if (strlen(e->volume) == vlen && memcmp(e->volume, volume, vlen) == 0 &&
		    strlen(e->key) == klen && memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

static struct space_entry *entry_get(struct space *sp, const char *volume, size_t vlen,
				     const char *key, size_t klen, int64_t last_use)
{
	struct space_entry *e = entry_find(sp, volume, vlen, key, klen);

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->volume = strndup(volume, vlen);
	e->key = strndup(key, klen);
	if (!e->volume || !e->key) {
		free(e->volume);
		free(e->key);
		free(e);
		return NULL;
	}
	e->fd = -1;
	e->last_use = last_use;
	e->next = sp->entries;
	sp->entries = e;
	return e;
}

static void entry_free(struct space_entry *e)
{
	free(e->volume);
	free(e->key);
	free(e->dir);
	free(e);
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
	sp->dirty = true;
}

/* ---- the usage file ---- */

static int save_usage(struct space *sp)
{
	struct space_state st = { 0 };
	_cleanup_free_ char *text = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -EBADF;
	size_t len;
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
	if (asprintf(&tmp, "%s.tmp", sp->usage_path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		unlink(tmp);
		return r;
	}
	if (rename(tmp, sp->usage_path) < 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
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

/* ---- scanning the cache: <dir>/cache/I<volume>/@xx/D<key> ---- */

static void scan_fanout(struct space *sp, const char *path, const char *volume)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct space_entry *e;
		struct stat st;

		/* 'D': a key that is printable ASCII; erofs keys (names, digests) always are. */
		if (de->d_name[0] != 'D' || !de->d_name[1])
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		e = entry_get(sp, volume, strlen(volume), de->d_name + 1, strlen(de->d_name + 1),
			      (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
		if (!e)
			continue;
		e->present = true;
		e->bytes = (uint64_t)st.st_blocks * 512;
		if (!e->dir || !streq(e->dir, path)) {
			free(e->dir);
			e->dir = strdup(path);
		}
	}
	closedir(d);
}

/* Bytes of data in a file, by SEEK_DATA/SEEK_HOLE: the object's fd is not the cache file
 * (fstat shows an anonymous inode) but seeks through to it. */
static uint64_t data_bytes(int fd)
{
	uint64_t total = 0;
	off_t pos = 0;

	for (int extents = 0; extents < 65536; extents++) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;
		if (data < 0)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole <= data)
			break;
		total += (uint64_t)(hole - data);
		pos = hole;
	}
	return total;
}

static void scan(struct space *sp)
{
	DIR *store;
	struct dirent *de;

	for (struct space_entry *e = sp->entries; e; e = e->next)
		e->present = false;
	store = opendir(sp->store_dir);
	if (store) {
		while ((de = readdir(store))) {
			char vpath[PATH_MAX];
			DIR *vol;
			struct dirent *fe;

			if (de->d_name[0] != 'I')
				continue;
			snprintf(vpath, sizeof(vpath), "%s/%s", sp->store_dir, de->d_name);
			vol = opendir(vpath);
			if (!vol)
				continue;
			while ((fe = readdir(vol))) {
				char fpath[PATH_MAX + NAME_MAX + 2];
				if (fe->d_name[0] != '@')
					continue;
				snprintf(fpath, sizeof(fpath), "%s/%s", vpath, fe->d_name);
				scan_fanout(sp, fpath, de->d_name + 1);
			}
			closedir(vol);
		}
		closedir(store);
	}
	/* An open object's file may not be linked yet (new objects are temporary files until
	 * the kernel commits them): its size comes from the object's fd. Records of files gone
	 * and unused are dropped. */
	for (struct space_entry **pp = &sp->entries; *pp;) {
		struct space_entry *e = *pp;

		if (!e->present && e->fd >= 0)
			e->bytes = data_bytes(e->fd);
		if (!e->present && e->in_use == 0) {
			*pp = e->next;
			entry_free(e);
			sp->dirty = true;
			continue;
		}
		pp = &e->next;
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

static unsigned warms_of(const struct space *sp, const char *model);

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
		v->models[m].in_use = warms_of(sp, c->models[m].name);
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

	if (!sp->ops || !e->dir)
		return -ENOENT;
	if (e->in_use) /* never: an object is open on it (or being opened) */
		return -EBUSY;
	snprintf(name, sizeof(name), "D%s", e->key);
	r = sp->ops->cull(sp->ops_userdata, e->dir, name);
	if (r == -EBUSY)
		sp->report.cull_busy++;
	if (r == 0 || r == -ENOENT || r == -ESTALE) {
		e->present = false;
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
		if (!streq(f->key, key) || !(f->present || f->in_use))
			continue;
		if (streq(f->volume, volume)) {
			mine = f->bytes;
			found = true;
		}
		best = MAX(best, f->bytes);
	}
	return MIN(found ? mine : best, ALIGN_UP(size, PAGE));
}

static void model_figures(struct space *sp, const struct view *v, size_t m, uint64_t *size,
			  uint64_t *cached)
{
	const struct catalogue_model *cm = v->cat[m];
	char volume[128];

	model_volume(sp, cm->name, volume, sizeof(volume));
	*size = *cached = 0;
	for (size_t b = 0; b < cm->n_blobs; b++) {
		const struct catalogue_blob *blob = &cm->blobs[b];
		const char *key = blob->role == BLOB_ROLE_META ? cm->name : blob->digest;
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

static void on_cull_timer(struct loop *loop, void *userdata)
{
	struct space *sp = userdata;
	struct view v;

	scan(sp);
	if (view_build(sp, &v) < 0)
		return;
	watermark_cull(sp, &v);
	if (sp->cfg->purge_unused_after_ms &&
	    loop_now_ms() - sp->last_purge_ms >= sp->cfg->purge_check_every_ms) {
		sp->last_purge_ms = loop_now_ms();
		purge_unused(sp, &v);
	}
	view_free(&v);
	scan(sp);
	if (view_build(sp, &v) == 0) {
		update_report(sp, &v);
		view_free(&v);
	}
	if (sp->dirty && loop_now_ms() - sp->last_save_ms >= SAVE_INTERVAL_MS)
		save_usage_logged(sp);
}

/* ---- mounts ---- */

/* How many EROFS mounts have fsid=MODEL (in any volume); the first mount point in `where`. */
static unsigned count_mounts(const char *model, char *where, size_t where_len)
{
	return erofs_mounts_count(model, NULL, where, where_len);
}

/* ---- warm ---- */

struct warm {
	struct warm *next;
	struct space *sp;
	struct control_conn *conn; /* NULL once the client went away */
	struct catalogue_model *model;
	char volume[128];
	char *mnt;		  /* private mount point, if we mounted */
	bool mounted;		  /* by us */
	int mount_result;	  /* of the worker */
	struct fill_sink **sinks; /* per blob */
	size_t blob, n_blobs;
	uint64_t next_off;
	unsigned outstanding, find_tries;
	uint64_t done_bytes, total_bytes, origin_before;
	int result;
	bool stopping; /* no more requests: error, cancel or all issued */
	uint64_t start_ms, last_progress_ms;
	int timer; /* waiting for sinks, -1 */
};

static unsigned warms_of(const struct space *sp, const char *model)
{
	unsigned n = 0;

	for (const struct warm *w = sp->warms; w; w = w->next)
		if (streq(w->model->name, model))
			n++;
	return n;
}

static void warm_free(struct warm *w)
{
	struct space *sp = w->sp;

	for (struct warm **pp = &sp->warms; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	for (size_t i = 0; i < w->n_blobs; i++)
		fill_sink_unref(w->sinks[i]);
	free(w->sinks);
	if (w->model) {
		catalogue_model_free(w->model);
		free(w->model);
	}
	free(w->mnt);
	free(w);
}

static void warm_umount_work(void *userdata)
{
	struct warm *w = userdata;

	if (umount2(w->mnt, 0) < 0)
		umount2(w->mnt, MNT_DETACH);
	rmdir(w->mnt);
}

static void warm_umount_done(void *userdata)
{
	struct warm *w = userdata;

	if (w->conn)
		control_finish(w->conn, w->result);
	warm_free(w);
}

/* Everything issued has completed: report, unmount what we mounted, answer. */
static void warm_end(struct warm *w)
{
	struct space *sp = w->sp;

	if (w->conn && w->result == 0) {
		uint64_t ms = MAX(loop_now_ms() - w->start_ms, 1);
		control_reply(w->conn, "progress %" PRIu64 " %" PRIu64, w->done_bytes,
			      w->total_bytes);
		control_reply(w->conn,
			      "warmed %s: %" PRIu64 " bytes in %.1f s (%.1f MiB/s), %" PRIu64
			      " bytes from the origin",
			      w->model->name, w->done_bytes, (double)ms / 1000,
			      (double)w->done_bytes / (1 << 20) / ((double)ms / 1000),
			      fill_get_stats(sp->fill)->origin_bytes - w->origin_before);
	}
	log_info("warm of model %s %s: %" PRIu64 " of %" PRIu64 " bytes", w->model->name,
		 w->result < 0 ? "failed"
		 : w->conn     ? "done"
			       : "cancelled",
		 w->done_bytes, w->total_bytes);
	for (size_t i = 0; i < w->n_blobs; i++)
		fill_sink_unref(w->sinks[i]);
	w->n_blobs = 0;
	if (w->mounted && workpool_submit(sp->pool, warm_umount_work, warm_umount_done, w) >= 0)
		return;
	warm_umount_done(w);
}

static void warm_pump(struct warm *w);

struct warm_request {
	struct warm *warm;
	uint64_t len;
};

static void warm_set_error(struct warm *w, int r)
{
	if (w->result < 0)
		return;
	w->result = r;
	w->stopping = true;
	if (w->conn)
		control_error(w->conn,
			      "warming model %s failed: %s (see the daemon's log; is the origin "
			      "reachable?)",
			      w->model->name, strerror(-r));
}

static void warm_chunk_done(void *userdata, int result)
{
	struct warm_request *req = userdata;
	struct warm *w = req->warm;

	w->outstanding--;
	if (result < 0)
		warm_set_error(w, result);
	else
		w->done_bytes += req->len;
	free(req);
	warm_pump(w);
}

static void warm_pump(struct warm *w)
{
	while (!w->stopping && w->outstanding < WARM_WINDOW) {
		struct warm_request *req;
		struct fill_sink *s;
		const struct catalogue_blob *b;
		uint64_t limit, unit, len;
		int r;

		if (w->blob >= w->n_blobs) {
			w->stopping = true;
			break;
		}
		s = w->sinks[w->blob];
		b = fill_sink_blob(s);
		limit = ALIGN_UP(b->size, PAGE);
		unit = fill_unit(w->sp->cfg->chunk_size, b);
		if (w->next_off >= limit) {
			w->blob++;
			w->next_off = 0;
			continue;
		}
		len = MIN(unit - w->next_off % unit, limit - w->next_off);
		req = calloc(1, sizeof(*req));
		if (!req) {
			warm_set_error(w, -ENOMEM);
			break;
		}
		req->warm = w;
		req->len = len;
		r = fill_read(s, w->next_off, len, warm_chunk_done, req);
		if (r < 0) {
			free(req);
			warm_set_error(w, r);
			break;
		}
		w->outstanding++;
		w->next_off += len;
	}
	if (w->conn && loop_now_ms() - w->last_progress_ms >= WARM_PROGRESS_MS) {
		w->last_progress_ms = loop_now_ms();
		control_reply(w->conn, "progress %" PRIu64 " %" PRIu64, w->done_bytes,
			      w->total_bytes);
	}
	if (w->stopping && w->outstanding == 0)
		warm_end(w);
}

static void warm_cancel(struct control_conn *conn, void *userdata)
{
	struct warm *w = userdata;

	w->conn = NULL;
	w->stopping = true;
	if (w->timer >= 0 || w->mount_result > 0)
		return; /* ends when the mount or the search for objects ends */
	if (w->outstanding == 0)
		warm_end(w);
}

/* The object of every blob of the model: from an existing mount, or ours. */
static bool warm_find_sinks(struct warm *w)
{
	struct space *sp = w->sp;

	for (size_t i = 0; i < w->model->n_blobs; i++) {
		const struct catalogue_blob *b = &w->model->blobs[i];
		const char *key = b->role == BLOB_ROLE_META ? w->model->name : b->digest;

		if (w->sinks[i])
			continue;
		w->sinks[i] = sp->ops ? sp->ops->find_sink(sp->ops_userdata, w->volume, key) : NULL;
		if (!w->sinks[i])
			return false;
	}
	w->n_blobs = w->model->n_blobs;
	return true;
}

static void warm_start_filling(struct warm *w)
{
	w->start_ms = loop_now_ms();
	w->origin_before = fill_get_stats(w->sp->fill)->origin_bytes;
	w->total_bytes = 0;
	for (size_t i = 0; i < w->n_blobs; i++)
		w->total_bytes += ALIGN_UP(fill_sink_blob(w->sinks[i])->size, PAGE);
	if (w->conn)
		control_reply(w->conn, "warming %s: %zu blob(s), %" PRIu64 " bytes%s",
			      w->model->name, w->n_blobs, w->total_bytes,
			      w->mounted ? " (mounted privately)" : " (using its mount)");
	warm_pump(w);
}

static void warm_fail(struct warm *w, int r)
{
	w->result = r;
	w->stopping = true;
	for (size_t i = 0; i < w->model->n_blobs; i++)
		if (i >= w->n_blobs && w->sinks[i]) {
			fill_sink_unref(w->sinks[i]);
			w->sinks[i] = NULL;
		}
	warm_end(w);
}

static void warm_find_timer(struct loop *loop, void *userdata)
{
	struct warm *w = userdata;

	if (!w->stopping && !warm_find_sinks(w) && ++w->find_tries < WARM_FIND_TRIES)
		return;
	loop_remove_fd(loop, w->timer);
	w->timer = -1;
	if (w->stopping) /* cancelled */
		return warm_fail(w, -ECANCELED);
	if (w->n_blobs == 0) {
		if (w->conn)
			control_error(w->conn,
				      "model %s was mounted but not all its blobs were opened by "
				      "the kernel within %d s; see the daemon's log",
				      w->model->name, WARM_FIND_TRIES * WARM_FIND_RETRY_MS / 1000);
		return warm_fail(w, -ETIMEDOUT);
	}
	warm_start_filling(w);
}

static void warm_mount_work(void *userdata)
{
	struct warm *w = userdata;
	const struct model_conf *mc = config_find_model(w->sp->cfg, w->model->name);
	char opts[512];

	snprintf(opts, sizeof(opts), "fsid=%s%s%s", w->model->name, mc && mc->options ? "," : "",
		 mc && mc->options ? mc->options : "");
	if (mkdir(w->mnt, 0700) < 0 && errno != EEXIST) {
		w->mount_result = -errno;
		return;
	}
	w->mount_result = mount("none", w->mnt, "erofs", MS_RDONLY | MS_NOSUID | MS_NODEV, opts) < 0
				  ? -errno
				  : 0;
	if (w->mount_result < 0)
		rmdir(w->mnt);
}

static void warm_mount_done(void *userdata)
{
	struct warm *w = userdata;
	int r = w->mount_result;

	if (r < 0) {
		if (w->conn)
			control_error(w->conn,
				      "cannot mount model %s privately to warm it: %s (%s)",
				      w->model->name, strerror(-r),
				      r == -EBUSY ? "a model without domain_id is mounted once; "
						    "mounted elsewhere, warm it while mounted"
						  : "see the daemon's log and dmesg");
		return warm_fail(w, r);
	}
	w->mounted = true;
	w->mount_result = 0;
	if (w->stopping)
		return warm_fail(w, -ECANCELED);
	if (warm_find_sinks(w))
		return warm_start_filling(w);
	w->timer = loop_add_periodic(w->sp->loop, WARM_FIND_RETRY_MS, warm_find_timer, w);
	if (w->timer < 0)
		warm_fail(w, w->timer);
}

/* ---- control verbs ---- */

static const struct catalogue_model *lookup_model(struct space *sp, struct control_conn *conn,
						  const char *name)
{
	const struct catalogue_model *m;

	models_resolve(sp->models, "", 0, NULL); /* re-reads the catalogue if it changed */
	m = catalogue_find_model(models_catalogue(sp->models), name);
	if (!m)
		control_error(conn,
			      "no model '%s' in the catalogue %s: 'blobcachectl status' lists the "
			      "models; publish it with 'blobcachectl publish --catalogue'",
			      name, sp->cfg->catalogue_dir);
	return m;
}

static int need_model_arg(struct control_conn *conn, int argc, char **argv)
{
	if (argc != 2) {
		control_error(conn, "usage: %s MODEL", argv[0]);
		return -EINVAL;
	}
	return 0;
}

static int verb_warm(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct space *sp = userdata;
	const struct catalogue_model *m;
	struct warm *w;
	int r;

	if ((r = need_model_arg(conn, argc, argv)) < 0)
		return r;
	if (!(m = lookup_model(sp, conn, argv[1])))
		return -ENOENT;
	if (warms_of(sp, m->name)) {
		control_error(conn, "model %s is being warmed already", m->name);
		return -EALREADY;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->sp = sp;
	w->conn = conn;
	w->timer = -1;
	w->model = calloc(1, sizeof(*w->model));
	w->sinks = calloc(m->n_blobs + 1, sizeof(*w->sinks));
	if (!w->model || !w->sinks) {
		free(w->sinks);
		free(w->model);
		free(w);
		return -ENOMEM;
	}
	/* A deep copy: the catalogue may be reloaded while we warm. */
	*w->model = *m;
	w->model->blobs = calloc(m->n_blobs + 1, sizeof(*w->model->blobs));
	w->model->n_blobs = 0;
	for (size_t i = 0; w->model->blobs && i < m->n_blobs; i++, w->model->n_blobs++)
		if (catalogue_blob_copy(&w->model->blobs[i], &m->blobs[i]) < 0)
			break;
	w->next = sp->warms;
	sp->warms = w;
	if (w->model->n_blobs != m->n_blobs) {
		warm_free(w);
		return -ENOMEM;
	}
	model_volume(sp, m->name, w->volume, sizeof(w->volume));
	control_set_cancel(conn, warm_cancel, w);
	if (warm_find_sinks(w)) {
		warm_start_filling(w);
		return CONTROL_LATER;
	}
	for (size_t i = 0; i < m->n_blobs; i++) { /* a partial set is not used */
		fill_sink_unref(w->sinks[i]);
		w->sinks[i] = NULL;
	}
	if (asprintf(&w->mnt, "%s/%s", sp->warm_dir, m->name) < 0 ||
	    (mkdir(sp->warm_dir, 0700) < 0 && errno != EEXIST)) {
		r = -errno;
		control_error(conn, "cannot create %s: %s", sp->warm_dir, strerror(errno));
		warm_free(w);
		return r;
	}
	w->mount_result = 1; /* pending */
	r = workpool_submit(sp->pool, warm_mount_work, warm_mount_done, w);
	if (r < 0) {
		warm_free(w);
		return r;
	}
	return CONTROL_LATER;
}

static int verb_status(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct space *sp = userdata;
	struct view v;
	uint64_t used = 0, total = 0;

	models_resolve(sp->models, "", 0, NULL);
	scan(sp);
	if (view_build(sp, &v) < 0)
		return -ENOMEM;
	update_report(sp, &v);
	volume_usage(sp, &used, &total);
	control_reply(conn,
		      "cache dir=%s volume_bytes=%" PRIu64 " used_bytes=%" PRIu64
		      " cache_bytes=%" PRIu64 " files=%" PRIu64 " high_watermark=%u "
		      "low_watermark=%u culled_files=%" PRIu64 " purged_files=%" PRIu64
		      " evicted_files=%" PRIu64,
		      sp->cfg->cache_dir, total, used, sp->report.cache_bytes, sp->report.files,
		      sp->cfg->high_watermark, sp->cfg->low_watermark, sp->report.culled_files,
		      sp->report.purged_files, sp->report.evicted_files);
	for (size_t m = 0; m < v.n_models; m++) {
		const char *name = v.cat[m]->name;
		uint64_t size, cached;
		unsigned errors = 0, in_use = 0, mounts;
		char where[PATH_MAX];

		model_figures(sp, &v, m, &size, &cached);
		for (size_t i = 0; i < v.n_files; i++)
			for (size_t o = 0; o < v.files[i].n_owners; o++)
				if (v.files[i].owners[o] == m) {
					errors += v.entries[i]->errors;
					in_use += v.entries[i]->in_use;
				}
		mounts = count_mounts(name, where, sizeof(where));
		control_reply(conn,
			      "model name=%s size=%" PRIu64 " cached=%" PRIu64
			      " pinned=%s last_use_ms=%" PRId64 " mounts=%u open_objects=%u "
			      "warming=%s errors=%u",
			      name, size, cached,
			      config_pinned(sp, name)	 ? "config"
			      : runtime_pinned(sp, name) ? "yes"
							 : "no",
			      v.models[m].last_use, mounts, in_use,
			      warms_of(sp, name) ? "yes" : "no", errors);
	}
	view_free(&v);
	return 0;
}

static int verb_evict(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct space *sp = userdata;
	const struct catalogue_model *m;
	struct view v;
	char where[PATH_MAX];
	unsigned mounts, files = 0, kept = 0, busy = 0;
	uint64_t bytes = 0;
	size_t idx = 0;
	int r;

	if ((r = need_model_arg(conn, argc, argv)) < 0)
		return r;
	if (!(m = lookup_model(sp, conn, argv[1])))
		return -ENOENT;
	if (config_pinned(sp, m->name) || runtime_pinned(sp, m->name)) {
		control_error(conn, "model %s is pinned (%s): unpin it first", m->name,
			      config_pinned(sp, m->name)
				      ? "by the configuration: remove 'pin = yes' from its [model] "
					"section"
				      : "at run time: blobcachectl unpin");
		return -EPERM;
	}
	mounts = count_mounts(m->name, where, sizeof(where));
	if (mounts) {
		control_error(conn, "model %s is mounted at %s%s: unmount it first", m->name, where,
			      mounts > 1 ? " (and elsewhere)" : "");
		return -EBUSY;
	}
	scan(sp);
	if ((r = view_build(sp, &v)) < 0)
		return r;
	while (idx < v.n_models && v.cat[idx] != m)
		idx++;
	if (idx < v.n_models && v.models[idx].busy) {
		view_free(&v);
		control_error(conn,
			      "model %s is in use (open objects or a warm in progress; the kernel "
			      "keeps a model's objects about 10 s after its last unmount): try "
			      "again shortly",
			      m->name);
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
			kept++;
			continue;
		}
		r = cull_entry(sp, v.entries[i]);
		if (r == 0) {
			files++;
			bytes += b;
		} else {
			busy++;
		}
	}
	view_free(&v);
	sp->report.evicted_files += files;
	sp->report.evicted_bytes += bytes;
	if (busy == 0)
		remove_meta_copy(sp, m);
	control_reply(conn, "evicted %s: %u file(s), %" PRIu64 " bytes", m->name, files, bytes);
	if (kept)
		control_reply(conn, "kept %u file(s) shared with pinned models", kept);
	log_info("evicted model %s: %u file(s), %" PRIu64 " bytes (blobcachectl evict)", m->name,
		 files, bytes);
	if (busy) {
		control_error(conn,
			      "%u file(s) of model %s are in use by the kernel and were kept: "
			      "try again shortly",
			      busy, m->name);
		return -EBUSY;
	}
	return 0;
}

static int verb_pin(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct space *sp = userdata;
	const struct catalogue_model *m;
	bool pin = streq(argv[0], "pin");
	int r;

	if ((r = need_model_arg(conn, argc, argv)) < 0)
		return r;
	if (!(m = lookup_model(sp, conn, argv[1])))
		return -ENOENT;
	if (!pin && config_pinned(sp, m->name) && !runtime_pinned(sp, m->name)) {
		control_error(conn,
			      "model %s is pinned by the configuration ([model %s] pin = yes): "
			      "remove that line and restart the daemon to unpin it",
			      m->name, m->name);
		return -EPERM;
	}
	if (pin) {
		r = space_state_add_pin(&sp->pins, m->name);
		if (r < 0)
			return r;
	} else {
		for (size_t i = 0; i < sp->pins.n_pins; i++)
			if (streq(sp->pins.pins[i], m->name)) {
				free(sp->pins.pins[i]);
				sp->pins.pins[i] = sp->pins.pins[--sp->pins.n_pins];
				break;
			}
	}
	r = save_usage(sp);
	if (r < 0)
		log_warn_errno(r, "cannot write %s: the %s of %s will not survive a restart",
			       sp->usage_path, argv[0], m->name);
	control_reply(conn, "%s %s%s", pin ? "pinned" : "unpinned", m->name,
		      !pin && config_pinned(sp, m->name) ? " (still pinned by the configuration)"
							 : "");
	log_info("model %s %s (blobcachectl)", m->name, pin ? "pinned" : "unpinned");
	return 0;
}

int space_register_control(struct space *sp, struct control *ctl)
{
	int r;

	if ((r = control_register(ctl, "status", "status: cache usage and every model's figures",
				  verb_status, sp)) < 0 ||
	    (r = control_register(ctl, "warm", "warm MODEL: fill the whole model now", verb_warm,
				  sp)) < 0 ||
	    (r = control_register(ctl, "evict", "evict MODEL: remove its unused cache files",
				  verb_evict, sp)) < 0 ||
	    (r = control_register(ctl, "pin", "pin MODEL: never cull or purge it", verb_pin, sp)) <
		    0 ||
	    (r = control_register(ctl, "unpin", "unpin MODEL: undo a pin", verb_pin, sp)) < 0)
		return r;
	return 0;
}

/* ---- life cycle ---- */

/* Private warm mounts left by a daemon that stopped during a warm: nobody reads them; detach
 * them (lazily: umount never waits for the daemon) so that the model can be mounted elsewhere. */
static void detach_stale_warm_mounts(const char *warm_dir)
{
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	size_t len = strlen(warm_dir);

	while (tb && it && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *target = mnt_fs_get_target(fs);

		if (!target || strncmp(target, warm_dir, len) != 0 || target[len] != '/')
			continue;
		if (umount2(target, MNT_DETACH) == 0)
			log_notice("detached %s, a warm mount left by a previous daemon", target);
		else
			log_warn_errno(errno, "cannot detach %s, left by a previous daemon's warm",
				       target);
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
}

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
	    asprintf(&sp->store_dir, "%s/cache", cfg->cache_dir) < 0 ||
	    asprintf(&sp->warm_dir, "%s/warm", cfg->run_dir) < 0) {
		space_free(sp);
		return -ENOMEM;
	}
	/* The kernel's cull acts in the current directory, which the loop thread changes right
	 * before each cull: every other path in the daemon is absolute (config_validate). */
	if (chdir("/") < 0)
		log_warn_errno(errno, "chdir /");
	detach_stale_warm_mounts(sp->warm_dir);
	r = load_usage(sp);
	if (r < 0)
		log_warn_errno(r, "cannot read %s: starting without usage records", sp->usage_path);
	r = workpool_new(loop, "space", 1, &sp->pool);
	if (r >= 0)
		r = sp->cull_timer =
			loop_add_periodic(loop, cfg->cull_interval_ms, on_cull_timer, sp);
	if (r < 0) {
		space_free(sp);
		return log_error_errno(r, "cannot start the cache space manager");
	}
	sp->last_purge_ms = loop_now_ms() - cfg->purge_check_every_ms; /* first check soon */
	scan(sp);
	{
		struct view v;
		if (view_build(sp, &v) == 0) {
			update_report(sp, &v);
			view_free(&v);
		}
	}
	log_info("cache space: cull above %u%% of the volume down to %u%%, checked every %" PRIu64
		 " ms; purge of unused models %s",
		 cfg->high_watermark, cfg->low_watermark, cfg->cull_interval_ms,
		 cfg->purge_unused_after_ms ? "on" : "off");
	*out = sp;
	return 0;
}

void space_set_kernel(struct space *sp, const struct space_kernel_ops *ops, void *userdata)
{
	sp->ops = ops;
	sp->ops_userdata = userdata;
}

void space_free(struct space *sp)
{
	if (!sp)
		return;
	if (sp->usage_path && sp->pool)
		save_usage_logged(sp);
	if (sp->cull_timer >= 0)
		loop_remove_fd(sp->loop, sp->cull_timer);
	workpool_free(sp->pool);
	/* Warms in progress: their clients see the connection close. Private mounts are left to
	 * the exit (the kernel keeps them; the next daemon's `restore` serves them). */
	while (sp->entries) {
		struct space_entry *e = sp->entries;
		sp->entries = e->next;
		entry_free(e);
	}
	space_state_free(&sp->pins);
	free(sp->report.models);
	free(sp->usage_path);
	free(sp->meta_dir);
	free(sp->store_dir);
	free(sp->warm_dir);
	free(sp);
}
