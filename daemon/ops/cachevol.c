// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/cachevol.h"

#include <fcntl.h>
#include <sys/statvfs.h>

#include "core/loop.h"
#include "core/workpool.h"
#include "log.h"
#include "macros.h"

#define PROBE_NAME  ".blobcached-probe"
#define PROBE_BYTES 4096

struct probe_job {
	char *path; /* <dir>/.blobcached-probe */
	char *dir;
	char *tag; /* or NULL */
	char cache_state;
	uint64_t seq;
	int err; /* positive, 0: good */
	const char *step;
	struct cachevol *cv;
};

struct cachevol {
	struct loop *loop;
	char *dir, *tag;
	cachevol_dead_fn dead;
	void *dead_userdata;
	bool dead_called;
	const struct fill_stats *fill;
	struct workpool *pool;
	int timer;
	bool failing; /* as last logged */
	struct cachevol_state st;
};

bool cachevol_verdict(const struct cachevol_state *st, uint64_t fill_error_ms, int fill_errno,
		      uint64_t now_ms, const char *dir, char *why, size_t why_len)
{
	size_t used = why_len ? strlen(why) : 0;
	bool ok = true;
	const char *fix = "check the device (dmesg, smartctl); if it answers again and this "
			  "stays, the filesystem stopped after the errors: repair it (umount, "
			  "fsck, mount) and restart blobcached";

#define SAY(...)                                                                                   \
	do {                                                                                       \
		if (used < why_len)                                                                \
			snprintf(why + used, why_len - used, __VA_ARGS__);                         \
	} while (0)

	if (st->cache_state == 'E' || st->cache_state == 'W') {
		SAY("cachefiles stopped the cache after I/O errors on the volume (state %c in "
		    "/proc/fs/fscache/caches): its binding is dead; blobcached exits to bind anew "
		    "once the volume answers (repair it if it does not)\n",
		    st->cache_state);
		ok = false;
		used = why_len ? strlen(why) : 0;
	}
	if (st->running_since_ms && now_ms - st->running_since_ms >= CACHEVOL_HUNG_MS) {
		SAY("cache volume not answering: a 4 KiB probe of %s has not returned for %llu ms; "
		    "%s\n",
		    dir, (unsigned long long)(now_ms - st->running_since_ms), fix);
		return false;
	}
	if (st->last_error_ms && st->last_error_ms >= st->last_ok_ms) {
		if (st->last_errno == EROFS)
			SAY("cache volume read-only (the filesystem of %s stopped after I/O "
			    "errors?): repair and remount it (umount, e2fsck, mount), then restart "
			    "blobcached\n",
			    dir);
		else
			SAY("cache volume failing: %s of the probe in %s failed %llu ms ago: %s; "
			    "%s\n",
			    st->last_step ? st->last_step : "?", dir,
			    (unsigned long long)(now_ms - st->last_error_ms),
			    strerror(st->last_errno), fix);
		return false;
	}
	if (fill_error_ms && fill_error_ms >= st->last_ok_ms) {
		SAY("cache volume failing: writing a chunk to %s failed %llu ms ago: %s\n", dir,
		    (unsigned long long)(now_ms - fill_error_ms), strerror(fill_errno));
		return false;
	}
#undef SAY
	return ok;
}

char cachevol_parse_caches(const char *text, const char *tag)
{
	/* "CACHE    REF   VOLS  OBJS  ACCES S NAME", a rule, then one line per cache. */
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char id[16], state = 0, name[256];
		int ref, vols, objs, acc;

		if (len < 300) {
			char buf[301];
			memcpy(buf, line, len);
			buf[len] = '\0';
			if (sscanf(buf, "%15s %d %d %d %d %c %255s", id, &ref, &vols, &objs, &acc,
				   &state, name) == 7 &&
			    streq(name, tag))
				return state;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* In a pool thread: only the job. */
static void probe_work(void *userdata)
{
	struct probe_job *job = userdata;
	struct statvfs sv;
	void *buf = NULL, *back = NULL;
	int fd = -1;

#define STEP(name, cond)                                                                           \
	do {                                                                                       \
		job->step = name;                                                                  \
		if (!(cond)) {                                                                     \
			job->err = errno ? errno : EIO;                                            \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

	if (job->tag) {
		FILE *f = fopen("/proc/fs/fscache/caches", "re");
		char text[8192];
		size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
		if (f)
			fclose(f);
		text[n] = '\0';
		job->cache_state = n ? cachevol_parse_caches(text, job->tag) : 0;
	}
	errno = 0;
	STEP("statvfs", statvfs(job->dir, &sv) == 0);
	if (sv.f_flag & ST_RDONLY) {
		job->step = "statvfs";
		job->err = EROFS;
		goto out;
	}
	STEP("allocate", posix_memalign(&buf, PROBE_BYTES, PROBE_BYTES) == 0 &&
				 posix_memalign(&back, PROBE_BYTES, PROBE_BYTES) == 0);
	memset(buf, 0, PROBE_BYTES);
	snprintf(buf, PROBE_BYTES, "blobcached cache volume probe %llu\n",
		 (unsigned long long)job->seq);
	/* O_DIRECT both ways: the read-back comes from the device, not the page cache. */
	fd = open(job->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_DIRECT, 0600);
	if (fd < 0 && errno == EINVAL) /* no O_DIRECT here (tmpfs): the page cache answers */
		fd = open(job->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	STEP("open", fd >= 0);
	STEP("write", pwrite(fd, buf, PROBE_BYTES, 0) == PROBE_BYTES);
	STEP("fdatasync", fdatasync(fd) == 0);
	STEP("read", pread(fd, back, PROBE_BYTES, 0) == PROBE_BYTES);
	errno = EIO;
	STEP("compare", memcmp(buf, back, PROBE_BYTES) == 0);
	job->err = 0;
#undef STEP
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(back);
}

static void probe_done(void *userdata)
{
	struct probe_job *job = userdata;
	struct cachevol *cv = job->cv;
	uint64_t now = loop_now_ms();

	cv->st.running_since_ms = 0;
	cv->st.probes++;
	if (job->tag)
		cv->st.cache_state = job->cache_state;
	if (job->err) {
		cv->st.failures++;
		cv->st.last_error_ms = now;
		cv->st.last_errno = job->err;
		cv->st.last_step = job->step; /* a string literal */
	} else {
		cv->st.last_ok_ms = now;
	}
	free(job->path);
	free(job->dir);
	free(job->tag);
	free(job);
	/* The volume answers, the cache is dead: only a new binding serves again. */
	if (!cv->dead_called && cv->dead && cv->st.last_ok_ms == now &&
	    (cv->st.cache_state == 'E' || cv->st.cache_state == 'W')) {
		cv->dead_called = true;
		cv->dead(cv->dead_userdata);
	}
}

static void on_timer(struct loop *loop, void *userdata)
{
	struct cachevol *cv = userdata;
	struct probe_job *job;
	char why[512] = "";
	bool ok;

	ok = cachevol_verdict(&cv->st, cv->fill->cache_last_error_ms, cv->fill->cache_last_errno,
			      loop_now_ms(), cv->dir, why, sizeof(why));
	if (!ok && !cv->failing)
		log_error("%.*s", (int)strcspn(why, "\n"), why);
	else if (ok && cv->failing)
		log_notice("cache volume %s answers again: ready", cv->dir);
	cv->failing = !ok;
	if (cv->st.running_since_ms)
		return; /* one at a time: a hung device does not pile up threads */
	job = calloc(1, sizeof(*job));
	if (!job)
		return;
	job->cv = cv;
	job->seq = cv->st.probes;
	job->dir = strdup(cv->dir);
	job->tag = cv->tag ? strdup(cv->tag) : NULL;
	if (!job->dir || (cv->tag && !job->tag) ||
	    asprintf(&job->path, "%s/%s", cv->dir, PROBE_NAME) < 0) {
		free(job->tag);
		free(job->dir);
		free(job);
		return;
	}
	if (workpool_submit(cv->pool, probe_work, probe_done, job) < 0) {
		free(job->tag);
		free(job->path);
		free(job->dir);
		free(job);
		return;
	}
	cv->st.running_since_ms = loop_now_ms();
}

int cachevol_start(struct loop *loop, const char *cache_dir, const char *tag,
		   const struct fill_stats *fill, cachevol_dead_fn dead, void *userdata,
		   struct cachevol **out)
{
	struct cachevol *cv = calloc(1, sizeof(*cv));
	int r;

	if (!cv || !(cv->dir = strdup(cache_dir)) || (tag && !(cv->tag = strdup(tag)))) {
		if (cv)
			free(cv->dir);
		free(cv);
		return -ENOMEM;
	}
	cv->dead = dead;
	cv->dead_userdata = userdata;
	cv->loop = loop;
	cv->fill = fill;
	cv->timer = -1;
	r = workpool_new(loop, "cachevol", 1, &cv->pool);
	if (r < 0)
		goto fail;
	r = cv->timer = loop_add_periodic(loop, CACHEVOL_INTERVAL_MS, on_timer, cv);
	if (r < 0)
		goto fail;
	on_timer(loop, cv); /* the first probe now */
	*out = cv;
	return 0;
fail:
	log_error_errno(r, "cannot start the cache volume probe");
	cachevol_free(cv);
	return r;
}

void cachevol_free(struct cachevol *cv)
{
	if (!cv)
		return;
	if (cv->timer >= 0)
		loop_remove_fd(cv->loop, cv->timer);
	workpool_free(cv->pool);
	free(cv->dir);
	free(cv->tag);
	free(cv);
}

bool cachevol_ready(const struct cachevol *cv, char *why, size_t why_len)
{
	if (!cv)
		return true;
	return cachevol_verdict(&cv->st, cv->fill->cache_last_error_ms, cv->fill->cache_last_errno,
				loop_now_ms(), cv->dir, why, why_len);
}

void cachevol_metrics(const struct cachevol *cv, FILE *f)
{
	char why[8] = "";

	if (!cv)
		return;
	fprintf(f,
		"# HELP blobcached_cache_volume_healthy 1 when the cache volume's last probe and "
		"chunk writes succeeded\n"
		"# TYPE blobcached_cache_volume_healthy gauge\n"
		"blobcached_cache_volume_healthy %d\n"
		"# HELP blobcached_cache_volume_probes_total Cache volume probes (write, "
		"fdatasync, "
		"direct read-back)\n"
		"# TYPE blobcached_cache_volume_probes_total counter\n"
		"blobcached_cache_volume_probes_total %llu\n"
		"# HELP blobcached_cache_volume_probe_failures_total Cache volume probes that "
		"failed\n"
		"# TYPE blobcached_cache_volume_probe_failures_total counter\n"
		"blobcached_cache_volume_probe_failures_total %llu\n",
		cachevol_ready(cv, why, sizeof(why)) ? 1 : 0, (unsigned long long)cv->st.probes,
		(unsigned long long)cv->st.failures);
}
