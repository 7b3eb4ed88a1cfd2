// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/cachectl.h"

#include <inttypes.h>
#include <libmount.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "catalogue.h"
#include "configfile.h"
#include "core/fill.h"
#include "core/loop.h"
#include "core/models.h"
#include "core/space.h"
#include "core/workpool.h"
#include "log.h"
#include "macros.h"
#include "core/mountinfo.h"
#include "ops/control.h"
#include "ops/mounts.h"
#include "ops/mountpolicy.h"

#define PAGE		   4096ULL
#define WARM_WINDOW	   8   /* chunk requests a warm keeps in flight */
#define WARM_PROGRESS_MS   250 /* progress line period */
#define WARM_FIND_RETRY_MS 100 /* after the private mount: wait for the blobs' OPENs */
#define WARM_FIND_TRIES	   100
#define PRELOAD_WINDOW	   2	 /* a preload stays behind demand reads */
#define PRELOAD_CHECK_MS   1000	 /* how often preloads look at the catalogue and mounts */
#define PRELOAD_RETRY_MS   30000 /* after a failed preload */

struct warm;

/* A model with [model NAME] preload = yes. */
enum preload_state {
	PRELOAD_WAITING, /* not in the catalogue, its managed mount not up, or a retry pending */
	PRELOAD_RUNNING,
	PRELOAD_DONE,
	PRELOAD_FAILED, /* retried after PRELOAD_RETRY_MS */
};

struct preload {
	struct preload *next;
	char name[MODEL_NAME_MAX + 1];
	char meta[DIGEST_HEX_LEN + 1]; /* the version preloaded (or being preloaded) */
	enum preload_state state;
	uint64_t retry_ms; /* loop_now_ms() after which a failed preload is tried again */
};

struct cachectl {
	struct loop *loop;
	const struct config *cfg;
	struct models *models;
	struct fill *fill;
	struct space *space;
	struct workpool *pool; /* private mounts and unmounts of warm */
	char *warm_dir;
	struct warm *warms;
	struct mounts *mounts; /* managed mounts, for preloads through them */
	struct preload *preloads;
	int preload_timer; /* -1: none */
};

/* ---- warm: fill a whole model now, through its mount or a private one ---- */

struct warm {
	struct warm *next;
	struct cachectl *cc;
	struct control_conn *conn; /* NULL once the client went away */
	struct catalogue_model *model;
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
	int timer;		 /* waiting for sinks, -1 */
	bool held;		 /* space_model_hold taken */
	unsigned window;	 /* chunk requests kept in flight */
	struct preload *preload; /* the preload this warm serves, or NULL */
};

static bool warming(const struct cachectl *cc, const char *model)
{
	for (const struct warm *w = cc->warms; w; w = w->next)
		if (streq(w->model->name, model))
			return true;
	return false;
}

static bool preloading(const struct cachectl *cc, const char *model)
{
	for (const struct warm *w = cc->warms; w; w = w->next)
		if (w->preload && streq(w->model->name, model))
			return true;
	return false;
}

static void warm_free(struct warm *w)
{
	struct cachectl *cc = w->cc;

	for (struct warm **pp = &cc->warms; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	if (w->held)
		space_model_release(cc->space, w->model->name);
	for (size_t i = 0; i < w->n_blobs; i++)
		space_put_sink(cc->space, w->sinks[i]);
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

static void preload_finished(struct preload *p, int result);

static void warm_umount_done(void *userdata)
{
	struct warm *w = userdata;

	if (w->preload)
		preload_finished(w->preload, w->result);

	if (w->conn)
		control_finish(w->conn, w->result);
	warm_free(w);
}

/* Everything issued has completed: report, unmount what we mounted, answer. */
static void warm_end(struct warm *w)
{
	struct cachectl *cc = w->cc;

	if (w->conn && w->result == 0) {
		uint64_t ms = MAX(loop_now_ms() - w->start_ms, 1);
		control_reply(w->conn, "progress %" PRIu64 " %" PRIu64, w->done_bytes,
			      w->total_bytes);
		control_reply(w->conn,
			      "warmed %s: %" PRIu64 " bytes in %.1f s (%.1f MiB/s), %" PRIu64
			      " bytes from the origin",
			      w->model->name, w->done_bytes, (double)ms / 1000,
			      (double)w->done_bytes / (1 << 20) / ((double)ms / 1000),
			      fill_get_stats(cc->fill)->origin_bytes - w->origin_before);
	}
	/* Cancelled: the client went away (Ctrl-C), at any stage, the private mount included. */
	log_info("warm of model %s %s: %" PRIu64 " of %" PRIu64 " bytes", w->model->name,
		 w->result == -ECANCELED || (w->result == 0 && !w->conn && !w->preload)
			 ? "cancelled"
		 : w->result < 0 ? "failed"
				 : "done",
		 w->done_bytes, w->total_bytes);
	for (size_t i = 0; i < w->n_blobs; i++)
		space_put_sink(cc->space, w->sinks[i]);
	w->n_blobs = 0;
	if (w->mounted && workpool_submit(cc->pool, warm_umount_work, warm_umount_done, w) >= 0)
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
	while (!w->stopping && w->outstanding < w->window) {
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
		unit = fill_unit(w->cc->cfg->chunk_size, b);
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
	for (size_t i = 0; i < w->model->n_blobs; i++) {
		if (w->sinks[i])
			continue;
		w->sinks[i] = space_find_sink(w->cc->space, w->model, &w->model->blobs[i]);
		if (!w->sinks[i])
			return false;
	}
	w->n_blobs = w->model->n_blobs;
	return true;
}

static void warm_start_filling(struct warm *w)
{
	w->start_ms = loop_now_ms();
	w->origin_before = fill_get_stats(w->cc->fill)->origin_bytes;
	w->total_bytes = 0;
	for (size_t i = 0; i < w->n_blobs; i++)
		w->total_bytes += ALIGN_UP(fill_sink_blob(w->sinks[i])->size, PAGE);
	if (w->conn)
		control_reply(
			w->conn, "warming %s: %zu blob(s), %" PRIu64 " bytes%s", w->model->name,
			w->n_blobs, w->total_bytes,
			w->mounted ? " (mounted privately)"
			: space_sinks_without_mount(w->cc->space) &&
					!space_model_device(w->cc->space, w->model->name, NULL, 0)
				? " (into its cache files)"
				: " (using its mount)");
	warm_pump(w);
}

static void warm_fail(struct warm *w, int r)
{
	w->result = r;
	w->stopping = true;
	for (size_t i = 0; i < w->model->n_blobs; i++)
		if (i >= w->n_blobs && w->sinks[i]) {
			space_put_sink(w->cc->space, w->sinks[i]);
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
	const struct model_conf *mc = config_find_model(w->cc->cfg, w->model->name);
	char opts[512];

	/* In the volume the daemon's own mounts use: the warm fills the files they read. */
	if (mount_erofs_options(w->model->name, mc ? mc->options : NULL, config_domain(w->cc->cfg),
				opts, sizeof(opts)) < 0) {
		w->mount_result = -ENAMETOOLONG;
		return;
	}
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
				      r == -EBUSY || r == -EEXIST
					      ? "a model is mounted once per volume or domain; "
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
	w->timer = loop_add_periodic(w->cc->loop, WARM_FIND_RETRY_MS, warm_find_timer, w);
	if (w->timer < 0)
		warm_fail(w, w->timer);
}

/* ---- control verbs ---- */

/* Mounts of a model: by fsid= in on-demand mode, by its metadata device in ublk mode. */
static unsigned model_mounts(struct cachectl *cc, const char *name, char *where, size_t len)
{
	char source[64];
	unsigned n = erofs_mounts_count(name, NULL, where, len);

	if (!n && space_model_device(cc->space, name, source, sizeof(source)) && source[0])
		n = erofs_mounts_of_device(source, where, len);
	return n;
}

static const struct catalogue_model *lookup_model(struct cachectl *cc, struct control_conn *conn,
						  const char *name)
{
	const struct catalogue_model *m;

	models_resolve(cc->models, "", 0, NULL); /* re-reads the catalogue if it changed */
	m = catalogue_find_model(models_catalogue(cc->models), name);
	if (!m)
		control_error(conn,
			      "no model '%s' in the catalogue %s: 'blobcachectl status' lists the "
			      "models; publish it with 'blobcachectl publish --catalogue'",
			      name, cc->cfg->catalogue_dir);
	return m;
}

/* The model a per-model verb ("VERB MODEL") names, or NULL once the error (usage, or no such
 * model) is answered: the verb then returns -EINVAL, whose text the answer replaces. */
static const struct catalogue_model *model_arg(struct cachectl *cc, struct control_conn *conn,
					       int argc, char **argv)
{
	if (argc != 2) {
		control_error(conn, "usage: %s MODEL", argv[0]);
		return NULL;
	}
	return lookup_model(cc, conn, argv[1]);
}

/* Start warming model m: through its objects if it is mounted, else through a private mount.
 * conn: the client to report to, or NULL (a preload). Returns 0 (the warm is under way and ends
 * by itself) or -errno (reported to conn). */
static int warm_start(struct cachectl *cc, const struct catalogue_model *m,
		      struct control_conn *conn, unsigned window, struct preload *preload)
{
	struct warm *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cc = cc;
	w->conn = conn;
	w->timer = -1;
	w->window = window;
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
	w->next = cc->warms;
	cc->warms = w;
	if (w->model->n_blobs != m->n_blobs) {
		warm_free(w);
		return -ENOMEM;
	}
	if ((r = space_model_hold(cc->space, m->name)) < 0) {
		warm_free(w);
		return r;
	}
	w->held = true;
	w->preload = preload;
	if (conn)
		control_set_cancel(conn, warm_cancel, w);
	if (warm_find_sinks(w)) {
		warm_start_filling(w);
		return 0;
	}
	for (size_t i = 0; i < m->n_blobs; i++) { /* a partial set is not used */
		space_put_sink(cc->space, w->sinks[i]);
		w->sinks[i] = NULL;
	}
	if (asprintf(&w->mnt, "%s/%s", cc->warm_dir, m->name) < 0 ||
	    (mkdir(cc->warm_dir, 0700) < 0 && errno != EEXIST)) {
		r = errno ? -errno : -ENOMEM;
		if (conn)
			control_error(conn, "cannot create %s: %s", cc->warm_dir, strerror(-r));
		w->preload = NULL; /* the caller sees the error */
		warm_free(w);
		return r;
	}
	w->mount_result = 1; /* pending */
	r = workpool_submit(cc->pool, warm_mount_work, warm_mount_done, w);
	if (r < 0) {
		w->preload = NULL;
		warm_free(w);
		return r;
	}
	return 0;
}

static int verb_warm(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct cachectl *cc = userdata;
	const struct catalogue_model *m;
	int r;

	if (!(m = model_arg(cc, conn, argc, argv)))
		return -EINVAL;
	if (warming(cc, m->name)) {
		control_error(conn, "model %s is being warmed already%s", m->name,
			      preloading(cc, m->name) ? " (preload = yes)" : "");
		return -EALREADY;
	}
	r = warm_start(cc, m, conn, WARM_WINDOW, NULL);
	return r < 0 ? r : CONTROL_LATER;
}

static const char *pin_word(enum space_pin p)
{
	return p & SPACE_PIN_CONFIG ? "config" : p & SPACE_PIN_RUNTIME ? "yes" : "no";
}

/* status and evict answer after a fresh walk of the cache, which runs in the space manager's
 * scan thread: the loop serves everything else meanwhile. */
struct scan_req {
	struct cachectl *cc;
	struct control_conn *conn;
	struct space_wait *wait;
	int (*fn)(struct cachectl *cc, struct control_conn *conn, const char *model);
	char model[]; /* the argument, if any */
};

static void scan_req_done(struct space *sp, void *ctx)
{
	struct scan_req *q = ctx;
	int r = q->fn(q->cc, q->conn, q->model);

	control_finish(q->conn, r);
	free(q);
}

static void scan_req_cancel(struct control_conn *conn, void *ctx)
{
	struct scan_req *q = ctx;

	space_wait_cancel(q->cc->space, q->wait);
	free(q);
}

static int after_scan(struct cachectl *cc, struct control_conn *conn, const char *model,
		      int (*fn)(struct cachectl *cc, struct control_conn *conn, const char *model))
{
	size_t len = model ? strlen(model) : 0;
	struct scan_req *q = calloc(1, sizeof(*q) + len + 1);

	if (!q)
		return -ENOMEM;
	q->cc = cc;
	q->conn = conn;
	q->fn = fn;
	memcpy(q->model, model ? model : "", len + 1);
	q->wait = space_after_scan(cc->space, scan_req_done, q);
	if (!q->wait) {
		free(q);
		return -ENOMEM;
	}
	control_set_cancel(conn, scan_req_cancel, q);
	return CONTROL_LATER;
}

static int status_now(struct cachectl *cc, struct control_conn *conn, const char *unused)
{
	_cleanup_free_ struct space_model_status *st = NULL;
	const struct space_report *rep;
	size_t n = 0;
	int r;

	if ((r = space_status_now(cc->space, &st, &n)) < 0)
		return r;
	rep = space_get_report(cc->space);
	control_reply(conn,
		      "cache dir=%s volume_bytes=%" PRIu64 " used_bytes=%" PRIu64
		      " cache_bytes=%" PRIu64 " files=%" PRIu64 " high_watermark=%u "
		      "low_watermark=%u culled_files=%" PRIu64 " purged_files=%" PRIu64
		      " evicted_files=%" PRIu64,
		      cc->cfg->cache_dir, rep->volume_bytes, rep->volume_used_bytes,
		      rep->cache_bytes, rep->files, rep->high_watermark, rep->low_watermark,
		      rep->culled_files, rep->purged_files, rep->evicted_files);
	for (size_t m = 0; m < n; m++) {
		const char *name = st[m].model->name;
		char where[PATH_MAX];
		unsigned mounts = model_mounts(cc, name, where, sizeof(where));

		control_reply(conn,
			      "model name=%s size=%" PRIu64 " cached=%" PRIu64
			      " pinned=%s last_use_ms=%" PRId64 " mounts=%u open_objects=%u "
			      "warming=%s errors=%u",
			      name, st[m].size, st[m].cached,
			      pin_word(space_model_pin(cc->space, name)), st[m].last_use_ms, mounts,
			      st[m].open_objects, warming(cc, name) ? "yes" : "no", st[m].errors);
	}
	return 0;
}

/* What refuses an eviction before it removes anything: a pin, a mount, block devices. */
static int evict_refused(struct cachectl *cc, struct control_conn *conn,
			 const struct catalogue_model *m)
{
	enum space_pin pin = space_model_pin(cc->space, m->name);
	char where[PATH_MAX];
	unsigned mounts;

	if (pin != SPACE_PIN_NONE) {
		control_error(conn, "model %s is pinned (%s): unpin it first", m->name,
			      pin & SPACE_PIN_CONFIG
				      ? "by the configuration: remove 'pin = yes' from its [model] "
					"section"
				      : "at run time: blobcachectl unpin");
		return -EPERM;
	}
	mounts = model_mounts(cc, m->name, where, sizeof(where));
	if (mounts) {
		control_error(conn, "model %s is mounted at %s%s: unmount it first", m->name, where,
			      mounts > 1 ? " (and elsewhere)" : "");
		return -EBUSY;
	}
	if (space_model_device(cc->space, m->name, where, sizeof(where))) {
		control_error(conn,
			      "model %s is mounted through block devices (%s, being set up or "
			      "removed): unmount it first, or try again shortly",
			      m->name, where[0] ? where : "not numbered yet");
		return -EBUSY;
	}
	return 0;
}

/* After the walk: the model and its state are looked at again (the catalogue may have been
 * reloaded, a mount made meanwhile). */
static int evict_now(struct cachectl *cc, struct control_conn *conn, const char *name)
{
	const struct catalogue_model *m;
	struct space_evict_result res;
	int r;

	if (!(m = lookup_model(cc, conn, name)))
		return -ENOENT;
	if ((r = evict_refused(cc, conn, m)) < 0)
		return r;
	r = space_evict(cc->space, m, &res);
	if (r == -EBUSY && res.busy == 0) {
		control_error(conn,
			      "model %s is in use (open objects or a warm in progress; the kernel "
			      "keeps a model's objects about 10 s after its last unmount): try "
			      "again shortly",
			      m->name);
		return r;
	}
	if (r < 0 && r != -EBUSY)
		return r;
	control_reply(conn, "evicted %s: %u file(s), %" PRIu64 " bytes", m->name, res.files,
		      res.bytes);
	if (res.kept)
		control_reply(conn, "kept %u file(s) shared with pinned models", res.kept);
	if (res.busy) {
		control_error(conn,
			      "%u file(s) of model %s are in use by the kernel and were kept: "
			      "try again shortly",
			      res.busy, m->name);
		return -EBUSY;
	}
	return 0;
}

static int verb_evict(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct cachectl *cc = userdata;
	const struct catalogue_model *m;
	int r;

	if (!(m = model_arg(cc, conn, argc, argv)))
		return -EINVAL;
	if ((r = evict_refused(cc, conn, m)) < 0)
		return r; /* at once, without waiting for a walk */
	return after_scan(cc, conn, m->name, evict_now);
}

static int verb_status(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	return after_scan(userdata, conn, NULL, status_now);
}

static int verb_pin(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct cachectl *cc = userdata;
	const struct catalogue_model *m;
	bool pin = streq(argv[0], "pin");
	enum space_pin was;
	int r;

	if (!(m = model_arg(cc, conn, argc, argv)))
		return -EINVAL;
	was = space_model_pin(cc->space, m->name);
	if (!pin && was == SPACE_PIN_CONFIG) {
		control_error(conn,
			      "model %s is pinned by the configuration ([model %s] pin = yes): "
			      "remove that line and restart the daemon to unpin it",
			      m->name, m->name);
		return -EPERM;
	}
	if ((r = space_set_pin(cc->space, m->name, pin)) < 0)
		return r;
	control_reply(conn, "%s %s%s", pin ? "pinned" : "unpinned", m->name,
		      !pin && (was & SPACE_PIN_CONFIG) ? " (still pinned by the configuration)"
						       : "");
	log_info("model %s %s (blobcachectl)", m->name, pin ? "pinned" : "unpinned");
	return 0;
}

/* ---- preload: [model NAME] preload = yes ---- */

static const char *const preload_words[] = {
	[PRELOAD_WAITING] = "waiting",
	[PRELOAD_RUNNING] = "running",
	[PRELOAD_DONE] = "done",
	[PRELOAD_FAILED] = "failed",
};

static void preload_finished(struct preload *p, int result)
{
	p->state = result < 0 ? PRELOAD_FAILED : PRELOAD_DONE;
	if (result < 0) {
		p->retry_ms = loop_now_ms() + PRELOAD_RETRY_MS;
		log_warn_errno(result, "preload of model %s failed; trying again in %d s", p->name,
			       PRELOAD_RETRY_MS / 1000);
	} else {
		log_info("preload of model %s done: it is fully cached", p->name);
	}
}

/* Is the model fully cached already? From the figures of the last periodic check (at most
 * cull_interval old; preloads wait for the first), not a walk of the cache in this timer tick:
 * a stale "no" only starts a warm that finds every chunk in place. */
static bool fully_cached(struct cachectl *cc, const struct catalogue_model *m)
{
	const struct space_report *rep = space_get_report(cc->space);

	for (size_t i = 0; i < rep->n_models; i++) {
		const struct space_model_report *mr = &rep->models[i];

		/* Figures of another version (published since the check) say nothing. */
		if (streq(mr->name, m->name) && streq(mr->meta, m->meta))
			return mr->size > 0 && mr->cached >= mr->size;
	}
	return false;
}

static void preload_check(struct cachectl *cc, struct preload *p)
{
	const struct model_conf *mc = config_find_model(cc->cfg, p->name);
	const struct catalogue_model *m =
		catalogue_find_model(models_catalogue(cc->models), p->name);
	const char *path;
	bool up = false;
	int r;

	if (!m) {
		if (p->state != PRELOAD_RUNNING)
			p->state = PRELOAD_WAITING;
		return;
	}
	if (!streq(p->meta, m->meta)) { /* published, or published again */
		if (p->state == PRELOAD_RUNNING)
			return; /* the warm of the older version ends first */
		snprintf(p->meta, sizeof(p->meta), "%s", m->meta);
		p->state = PRELOAD_WAITING;
		p->retry_ms = 0;
	}
	if (p->state == PRELOAD_RUNNING || p->state == PRELOAD_DONE)
		return;
	if (p->state == PRELOAD_FAILED && loop_now_ms() < p->retry_ms)
		return;
	/* A model the daemon mounts is preloaded through that mount, once it is in place. */
	if (mc && mc->mount && (!mounts_model_state(cc->mounts, p->name, &path, &up) || !up)) {
		p->state = PRELOAD_WAITING;
		return;
	}
	if (warming(cc, p->name))
		return; /* blobcachectl warm is at it */
	if (!space_scanned(cc->space))
		return; /* the first walk of the cache (at start) says what is cached */
	if (fully_cached(cc, m)) {
		p->state = PRELOAD_DONE;
		log_info("preload of model %s: already fully cached", p->name);
		return;
	}
	log_info("preloading model %s (metadata %.12s) in the background", p->name, m->meta);
	p->state = PRELOAD_RUNNING;
	r = warm_start(cc, m, NULL, PRELOAD_WINDOW, p);
	if (r < 0)
		preload_finished(p, r);
}

static void on_preload_timer(struct loop *loop, void *userdata)
{
	struct cachectl *cc = userdata;

	models_resolve(cc->models, "", 0, NULL); /* re-reads the catalogue if it changed */
	for (struct preload *p = cc->preloads; p; p = p->next)
		preload_check(cc, p);
}

const char *cachectl_preload_state(const struct cachectl *cc, const char *model)
{
	for (const struct preload *p = cc ? cc->preloads : NULL; p; p = p->next)
		if (streq(p->name, model))
			return preload_words[p->state];
	return "off";
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

int cachectl_start(struct loop *loop, const struct config *cfg, struct models *models,
		   struct fill *fill, struct space *space, struct control *ctl,
		   struct cachectl **out)
{
	struct cachectl *cc = calloc(1, sizeof(*cc));
	int r;

	if (!cc)
		return -ENOMEM;
	cc->preload_timer = -1;
	cc->loop = loop;
	cc->cfg = cfg;
	cc->models = models;
	cc->fill = fill;
	cc->space = space;
	if (asprintf(&cc->warm_dir, "%s/warm", cfg->run_dir) < 0) {
		cc->warm_dir = NULL;
		cachectl_free(cc);
		return -ENOMEM;
	}
	detach_stale_warm_mounts(cc->warm_dir);
	if ((r = workpool_new(loop, "warm", 1, &cc->pool)) < 0 ||
	    (r = control_register(ctl, "status", "status: cache usage and every model's figures",
				  verb_status, cc)) < 0 ||
	    (r = control_register(ctl, "warm", "warm MODEL: fill the whole model now", verb_warm,
				  cc)) < 0 ||
	    (r = control_register(ctl, "evict", "evict MODEL: remove its unused cache files",
				  verb_evict, cc)) < 0 ||
	    (r = control_register(ctl, "pin", "pin MODEL: never cull or purge it", verb_pin, cc)) <
		    0 ||
	    (r = control_register(ctl, "unpin", "unpin MODEL: undo a pin", verb_pin, cc)) < 0) {
		cachectl_free(cc);
		return log_error_errno(r, "cannot register the cache verbs");
	}
	*out = cc;
	return 0;
}

int cachectl_start_preloads(struct cachectl *cc, struct mounts *mounts)
{
	cc->mounts = mounts;
	for (size_t i = 0; i < cc->cfg->n_models; i++) {
		struct preload *p;

		if (!cc->cfg->models[i].preload)
			continue;
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		snprintf(p->name, sizeof(p->name), "%s", cc->cfg->models[i].name);
		p->next = cc->preloads;
		cc->preloads = p;
	}
	if (!cc->preloads)
		return 0;
	cc->preload_timer = loop_add_periodic(cc->loop, PRELOAD_CHECK_MS, on_preload_timer, cc);
	if (cc->preload_timer < 0)
		return log_error_errno(cc->preload_timer, "cannot start the preload timer");
	on_preload_timer(cc->loop, cc);
	return 0;
}

void cachectl_free(struct cachectl *cc)
{
	if (!cc)
		return;
	if (cc->preload_timer >= 0)
		loop_remove_fd(cc->loop, cc->preload_timer);
	for (struct warm *w = cc->warms; w; w = w->next)
		w->preload = NULL; /* the preloads go now; warms are left to the exit */
	while (cc->preloads) {
		struct preload *p = cc->preloads;
		cc->preloads = p->next;
		free(p);
	}
	/* Warms in progress: their clients see the connection close. Private mounts are left to
	 * the exit (the kernel keeps them; the next daemon's `restore` serves them). */
	workpool_free(cc->pool);
	free(cc->warm_dir);
	free(cc);
}
