// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/catsync.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "catalogue.h"
#include "core/loop.h"
#include "core/origin.h"
#include "core/workpool.h"
#include "io.h"
#include "log.h"
#include "macros.h"

#define INDEX_PATH    "models/" CATALOGUE_INDEX_NAME
#define INDEX_MAX     (4 * 1024 * 1024)
#define MANIFEST_NAME "origin-catalogue"
#define SUFFIX	      ".model"

struct sync_job {
	struct catsync *cs;
	/* Inputs (the thread's own copies). */
	struct origin *origin;
	char *catalogue_dir, *manifest_path;
	/* Results. */
	int error; /* the index could not be read or parsed: nothing changed */
	char message[512];
	uint64_t added, updated, removed, refused, models;
	char refused_msg[512]; /* the first refused entry's reason */
};

struct catsync {
	struct loop *loop;
	struct origin *origin;
	char *catalogue_dir, *manifest_path;
	struct workpool *pool;
	int timer;
	bool running;
	char last_message[512]; /* logged once until it changes */
	struct catsync_stats stats;
};

static bool in_list(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(names[i], name))
			return true;
	return false;
}

static void free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The names this node took from the origin: the manifest is an index file of our own. */
static void read_manifest(const char *path, char ***names, size_t *n)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");
	char err[128];

	*names = NULL;
	*n = 0;
	if (!f)
		return;
	if (getdelim(&text, &len, '\0', f) >= 0)
		catalogue_parse_index(text, strlen(text), names, n, err, sizeof(err));
	fclose(f);
}

static int write_manifest(const char *path, char **names, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r;

	if (!f)
		return -ENOMEM;
	fputs(CATALOGUE_INDEX_HEADER "\n", f);
	for (size_t i = 0; i < n; i++)
		if (names[i])
			fprintf(f, "%s\n", names[i]);
	if (fclose(f) != 0) {
		free(text);
		return -ENOMEM;
	}
	r = write_file_atomic(path, text, len);
	free(text);
	return r;
}

static char *read_local(const char *path, size_t *len)
{
	_cleanup_free_ char *text = NULL;
	FILE *f = fopen(path, "re");
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return NULL;
	n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return TAKE_PTR(text);
}

/* In a pool thread: only the job. */
static void sync_work(void *userdata)
{
	struct sync_job *job = userdata;
	char **index = NULL, **owned = NULL, **now_owned = NULL;
	size_t n_index = 0, n_owned = 0, n_now = 0;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	char err[256] = "";
	int r;

	r = job->origin->ops->get_file(job->origin, INDEX_PATH, INDEX_MAX, &text, &len);
	if (r < 0) {
		job->error = r;
		snprintf(job->message, sizeof(job->message), "cannot read %s from the origin: %s%s",
			 INDEX_PATH, strerror(-r),
			 r == -ENOENT ? " (publish with this blobcachectl writes it)" : "");
		return;
	}
	r = catalogue_parse_index(text, len, &index, &n_index, err, sizeof(err));
	if (r < 0) {
		job->error = r;
		snprintf(job->message, sizeof(job->message), "the origin's %s is refused: %s",
			 INDEX_PATH, err);
		return;
	}
	read_manifest(job->manifest_path, &owned, &n_owned);
	now_owned = calloc(n_index + n_owned + 1, sizeof(*now_owned));
	if (!now_owned) {
		job->error = -ENOMEM;
		snprintf(job->message, sizeof(job->message), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_index; i++) {
		const char *name = index[i];
		_cleanup_free_ char *rel = NULL, *local = NULL, *entry = NULL, *mine = NULL;
		struct catalogue_model m;
		size_t elen = 0, mlen = 0;
		bool owned_before = in_list(owned, n_owned, name);

		if (asprintf(&rel, "models/%s" SUFFIX, name) < 0 ||
		    asprintf(&local, "%s/%s" SUFFIX, job->catalogue_dir, name) < 0)
			break;
		r = job->origin->ops->get_file(job->origin, rel, CATALOGUE_FILE_MAX, &entry, &elen);
		if (r < 0) {
			/* Not readable now: what is in place stays. */
			if (owned_before) {
				now_owned[n_now++] = strdup(name);
				job->models++; /* the entry in place stays */
			}
			if (!job->refused_msg[0])
				snprintf(job->refused_msg, sizeof(job->refused_msg),
					 "cannot read %s from the origin: %s", rel, strerror(-r));
			job->refused++;
			continue;
		}
		if (memchr(entry, '\0', elen) ||
		    catalogue_parse_model(entry, rel, &m, err, sizeof(err)) < 0) {
			if (owned_before) {
				now_owned[n_now++] = strdup(name);
				job->models++; /* the entry in place stays */
			}
			if (!job->refused_msg[0])
				snprintf(job->refused_msg, sizeof(job->refused_msg),
					 "%s refused: %s", rel,
					 memchr(entry, '\0', elen) ? "a NUL byte" : err);
			job->refused++;
			continue;
		}
		r = streq(m.name, name) ? 0 : -EINVAL;
		catalogue_model_free(&m);
		if (r < 0) {
			if (owned_before) {
				now_owned[n_now++] = strdup(name);
				job->models++; /* the entry in place stays */
			}
			if (!job->refused_msg[0])
				snprintf(job->refused_msg, sizeof(job->refused_msg),
					 "%s refused: its [model] name is not %s", rel, name);
			job->refused++;
			continue;
		}
		mine = read_local(local, &mlen);
		if (mine && !owned_before) {
			/* Placed by hand: it wins. */
			if (!job->refused_msg[0])
				snprintf(
					job->refused_msg, sizeof(job->refused_msg),
					"%s is a local entry: the origin's %s is not taken (remove "
					"it to follow the origin)",
					local, rel);
			continue;
		}
		now_owned[n_now++] = strdup(name);
		job->models++;
		if (mine && mlen == elen && memcmp(mine, entry, elen) == 0)
			continue;
		r = write_file_atomic(local, entry, elen);
		if (r < 0) {
			if (!job->refused_msg[0])
				snprintf(job->refused_msg, sizeof(job->refused_msg),
					 "cannot write %s: %s", local, strerror(-r));
			continue;
		}
		if (mine)
			job->updated++;
		else
			job->added++;
	}
	/* Entries of ours that the origin no longer lists: unpublished. */
	for (size_t i = 0; i < n_owned; i++) {
		_cleanup_free_ char *local = NULL;
		if (in_list(index, n_index, owned[i]))
			continue;
		if (asprintf(&local, "%s/%s" SUFFIX, job->catalogue_dir, owned[i]) < 0)
			continue;
		if (unlink(local) == 0 || errno == ENOENT)
			job->removed++;
		else
			now_owned[n_now++] = strdup(owned[i]);
	}
	r = write_manifest(job->manifest_path, now_owned, n_now);
	if (r < 0)
		snprintf(job->message, sizeof(job->message), "cannot write %s: %s",
			 job->manifest_path, strerror(-r));
out:
	free_list(index, n_index);
	free_list(owned, n_owned);
	if (now_owned)
		free_list(now_owned, n_now);
}

static void job_free(struct sync_job *job)
{
	free(job->catalogue_dir);
	free(job->manifest_path);
	free(job);
}

static void sync_done(void *userdata)
{
	struct sync_job *job = userdata;
	struct catsync *cs = job->cs;
	char msg[sizeof(cs->last_message)];

	cs->running = false;
	cs->stats.syncs++;
	if (job->error)
		cs->stats.sync_failures++;
	else
		cs->stats.models = job->models;
	cs->stats.added += job->added;
	cs->stats.updated += job->updated;
	cs->stats.removed += job->removed;
	cs->stats.refused += job->refused;
	if (job->added || job->updated || job->removed)
		log_notice("catalogue from the origin: %llu model(s) added, %llu updated, %llu "
			   "removed; %llu from the origin in all",
			   (unsigned long long)job->added, (unsigned long long)job->updated,
			   (unsigned long long)job->removed, (unsigned long long)job->models);
	snprintf(msg, sizeof(msg), "%s", job->message[0] ? job->message : job->refused_msg);
	if (msg[0] && !streq(msg, cs->last_message))
		log_warn("catalogue from the origin: %s%s", msg,
			 job->error ? "; the catalogue in place stays" : "");
	else if (!msg[0] && cs->last_message[0])
		log_info("catalogue from the origin: read again without errors");
	snprintf(cs->last_message, sizeof(cs->last_message), "%s", msg);
	job_free(job);
}

static void on_timer(struct loop *loop, void *userdata)
{
	struct catsync *cs = userdata;
	struct sync_job *job;

	if (cs->running)
		return;
	job = calloc(1, sizeof(*job));
	if (!job)
		return;
	job->cs = cs;
	job->origin = cs->origin;
	job->catalogue_dir = strdup(cs->catalogue_dir);
	job->manifest_path = strdup(cs->manifest_path);
	if (!job->catalogue_dir || !job->manifest_path ||
	    workpool_submit(cs->pool, sync_work, sync_done, job) < 0) {
		job_free(job);
		return;
	}
	cs->running = true;
}

int catsync_start(struct loop *loop, struct origin *origin, const char *catalogue_dir,
		  const char *state_dir, uint64_t refresh_ms, struct catsync **out)
{
	struct catsync *cs;
	int r;

	if (!origin->ops->get_file)
		return log_error_errno(EOPNOTSUPP,
				       "[origin] catalogue: the %s origin cannot "
				       "serve model entries",
				       origin->ops->kind);
	if (!state_dir)
		return log_error_errno(EINVAL, "[origin] catalogue needs [daemon] state_dir");
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->loop = loop;
	cs->origin = origin;
	cs->timer = -1;
	if (!(cs->catalogue_dir = strdup(catalogue_dir)) ||
	    asprintf(&cs->manifest_path, "%s/%s", state_dir, MANIFEST_NAME) < 0) {
		cs->manifest_path = NULL;
		r = -ENOMEM;
		goto fail;
	}
	r = mkdir_parents(catalogue_dir);
	if (r < 0) {
		log_error_errno(r, "cannot create the catalogue directory %s", catalogue_dir);
		goto fail;
	}
	r = workpool_new(loop, "catsync", 1, &cs->pool);
	if (r < 0)
		goto fail;
	r = cs->timer = loop_add_periodic(loop, refresh_ms, on_timer, cs);
	if (r < 0)
		goto fail;
	log_info("catalogue from the origin: %s read every %llu ms into %s", INDEX_PATH,
		 (unsigned long long)refresh_ms, catalogue_dir);
	on_timer(loop, cs); /* the first read now */
	*out = cs;
	return 0;
fail:
	catsync_free(cs);
	return r;
}

void catsync_free(struct catsync *cs)
{
	if (!cs)
		return;
	if (cs->timer >= 0)
		loop_remove_fd(cs->loop, cs->timer);
	workpool_free(cs->pool);
	free(cs->catalogue_dir);
	free(cs->manifest_path);
	free(cs);
}

const struct catsync_stats *catsync_get_stats(const struct catsync *cs)
{
	return cs ? &cs->stats : NULL;
}

void catsync_metrics(const struct catsync *cs, FILE *f)
{
	if (!cs)
		return;
	fprintf(f,
		"# HELP blobcached_origin_catalogue_models Catalogue entries taken from the "
		"origin\n"
		"# TYPE blobcached_origin_catalogue_models gauge\n"
		"blobcached_origin_catalogue_models %llu\n"
		"# HELP blobcached_origin_catalogue_reads_total Reads of the origin's model index\n"
		"# TYPE blobcached_origin_catalogue_reads_total counter\n"
		"blobcached_origin_catalogue_reads_total %llu\n"
		"# HELP blobcached_origin_catalogue_read_failures_total Reads of the index that "
		"failed\n"
		"# TYPE blobcached_origin_catalogue_read_failures_total counter\n"
		"blobcached_origin_catalogue_read_failures_total %llu\n"
		"# HELP blobcached_origin_catalogue_refused_total Entries refused or unreadable\n"
		"# TYPE blobcached_origin_catalogue_refused_total counter\n"
		"blobcached_origin_catalogue_refused_total %llu\n",
		(unsigned long long)cs->stats.models, (unsigned long long)cs->stats.syncs,
		(unsigned long long)cs->stats.sync_failures, (unsigned long long)cs->stats.refused);
}
