// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/mounts.h"

#include <dirent.h>
#include <libmount.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "configfile.h"
#include "ops/control.h"
#include "io.h"
#include "log.h"
#include "core/loop.h"
#include "macros.h"
#include "ops/mountpolicy.h"
#include "names.h"

#define EROFS_MAGIC	    0xE0F5E1E2u
#define NFS_MAGIC	    0x6969u
#define MOUNT_OP_TIMEOUT_MS 60000 /* a mount or unmount not back by then is reported stuck */
#define MAX_STUCK_PROBES    4	  /* per mount: no more probe threads while these hang */
#define MOUNTINFO	    "/proc/self/mountinfo"

enum mount_kind { KIND_MODEL, KIND_NFS };

enum mount_state {
	ST_PENDING,    /* to be mounted at next_attempt_ms */
	ST_MOUNTING,   /* a mount job runs */
	ST_MOUNTED,    /* in place */
	ST_DETACHING,  /* dead: a detach job runs, a mount follows */
	ST_UNMOUNTING, /* blobcachectl umount: an unmount job runs */
};

static const char *const state_names[] = {
	[ST_PENDING] = "pending",     [ST_MOUNTING] = "mounting",     [ST_MOUNTED] = "mounted",
	[ST_DETACHING] = "detaching", [ST_UNMOUNTING] = "unmounting",
};

struct managed_mount {
	struct mounts *m;
	struct managed_mount *next;
	unsigned refs; /* the list, and every job not yet completed in the loop */
	bool removed;
	/* Immutable while referenced: jobs read them in their threads. */
	enum mount_kind kind;
	char *name;    /* model name, or "origin" */
	char *path;    /* mount point */
	char *options; /* extra EROFS options, or the NFS options */
	char *source;  /* NFS: SERVER:/EXPORT */
	char *domain;  /* [cache] domain at the time it was added, or NULL */
	bool from_config;
	bool persisted; /* runtime mount: written to state_dir/mounts */
	/* Loop thread only. */
	bool replace_stale; /* a mount found in place predates this cache binding: replace it */
	enum mount_state state;
	unsigned generation; /* bumped when a mount is made or dropped: stale jobs are ignored */
	struct mount_health health;
	unsigned failed_attempts; /* mount attempts failed in a row */
	uint64_t next_attempt_ms;
	uint64_t op_started_ms;
	bool op_stuck_logged;
	bool probe_running;
	uint64_t probe_started_ms;
	unsigned probes_outstanding; /* probe threads not yet back (some may hang for good) */
	bool answering;		     /* the last probe came back OK */
	uint64_t lost_at_ms;	     /* 0: not lost */
	uint64_t losses, remounts, probe_failures;
	time_t last_recovery; /* wall clock of the last remount, 0: none */
	uint64_t last_recovery_ms;
	char last_error[1024];
	struct control_conn *waiter; /* blobcachectl mount/umount waiting for the job */
	/* Block-device front ends: set before the mount job starts, immutable while it runs. */
	char *bdev_source;  /* e.g. /dev/ublkb3; NULL until the devices serve */
	char *bdev_options; /* e.g. device=/dev/ublkb4 */
	bool attaching;	    /* the front end is making the devices (holds a reference) */
};

enum job_kind { JOB_MOUNT, JOB_DETACH, JOB_UNMOUNT, JOB_PROBE };

/* Shared with the job threads; outlives struct mounts while threads hang. */
struct job_queue {
	pthread_mutex_t lock;
	struct job *done;
	int efd;
	unsigned refs; /* struct mounts + running threads */
	bool closed;
};

struct job {
	struct job *next;
	struct job_queue *q;
	struct managed_mount *mm;
	enum job_kind kind;
	unsigned generation;
	dev_t cache_dev;
	bool replace_stale; /* JOB_MOUNT: detach a mount in place first, never adopt it */
	int result;
	bool kept; /* JOB_MOUNT: the mount was there already (kept, not made) */
	char message[1024];
};

struct mounts {
	struct loop *loop;
	struct job_queue *q;
	struct managed_mount *list;
	struct libmnt_monitor *monitor;
	int monitor_fd;
	int timer;
	char *state_path;
	char *domain; /* [cache] domain, or NULL */
	dev_t cache_dev;
	bool started;
	const struct mounts_blockdev_ops *bdev; /* NULL: models mount by name (fsid=) */
	void *bdev_userdata;
};

static void job_queue_unref(struct job_queue *q)
{
	bool last;

	pthread_mutex_lock(&q->lock);
	last = --q->refs == 0;
	pthread_mutex_unlock(&q->lock);
	if (last) {
		for (struct job *j = q->done, *next; j; j = next) {
			next = j->next;
			free(j);
		}
		pthread_mutex_destroy(&q->lock);
		free(q);
	}
}

/* Not inlined: GCC's use-after-free check cannot see that the callers hold another reference. */
static __attribute__((noinline)) void mm_unref(struct managed_mount *mm)
{
	if (--mm->refs)
		return;
	free(mm->name);
	free(mm->path);
	free(mm->options);
	free(mm->source);
	free(mm->domain);
	free(mm->bdev_source);
	free(mm->bdev_options);
	free(mm);
}

static const char *kind_name(const struct managed_mount *mm)
{
	return mm->kind == KIND_NFS ? "origin" : "model";
}

/* ---- work done in job threads ---- */

static struct libmnt_table *read_mountinfo(void)
{
	return mnt_new_table_from_file(MOUNTINFO);
}

static bool table_has(struct libmnt_table *tb, const struct managed_mount *mm)
{
	if (mm->kind == KIND_NFS)
		return mount_table_has_fs(tb, mm->path, "nfs", mm->source);
	/* Block devices: the model's devices; before they serve, any EROFS there (a mount of an
	 * earlier daemon's devices, which died with it). */
	if (mm->m->bdev)
		return mount_table_has_fs(tb, mm->path, "erofs", mm->bdev_source);
	return mount_table_has_erofs(tb, mm->path, mm->name);
}

#define JOB_FAIL(job, err, ...)                                                                    \
	do {                                                                                       \
		snprintf((job)->message, sizeof((job)->message), __VA_ARGS__);                     \
		return (job)->result = -(err);                                                     \
	} while (0)

/* The mount point of a model: an empty directory, not on the cache volume. */
static int check_mount_point(struct job *job)
{
	const struct managed_mount *mm = job->mm;
	struct stat st;
	DIR *dir;
	struct dirent *de;
	bool empty = true;

	if (stat(mm->path, &st) < 0)
		JOB_FAIL(job, errno, "cannot stat %s: %s", mm->path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		JOB_FAIL(job, ENOTDIR, "%s is not a directory: give an empty directory", mm->path);
	if (job->cache_dev && st.st_dev == job->cache_dev)
		JOB_FAIL(job, EXDEV,
			 "%s is on the cache volume: choose a mount point elsewhere (e.g. "
			 "/models/NAME)",
			 mm->path);
	dir = opendir(mm->path);
	if (!dir)
		JOB_FAIL(job, errno, "cannot read %s: %s", mm->path, strerror(errno));
	while (empty && (de = readdir(dir)))
		empty = streq(de->d_name, ".") || streq(de->d_name, "..");
	closedir(dir);
	if (!empty)
		JOB_FAIL(job, ENOTEMPTY,
			 "%s is not empty: a mount point must be an empty directory (the daemon "
			 "never removes anything there)",
			 mm->path);
	return 0;
}

static int mount_model(struct job *job, struct libmnt_table *tb)
{
	const struct managed_mount *mm = job->mm;
	char opts[256];
	bool shared = false;
	int r;

	r = check_mount_point(job);
	if (r < 0)
		return r;
	if (mm->bdev_source)
		r = snprintf(opts, sizeof(opts), "%s%s%s", mm->bdev_options,
			     mm->options && *mm->options && *mm->bdev_options ? "," : "",
			     mm->options ? mm->options : "") < (int)sizeof(opts)
			    ? 0
			    : -ENAMETOOLONG;
	else
		r = mount_erofs_options(mm->name, mm->options, mm->domain, opts, sizeof(opts));
	if (r < 0)
		JOB_FAIL(job, -r, "mount options of %s too long", mm->name);
	/* The anchor: the mount point bound onto itself and made shared, so that the EROFS
	 * mount and its remounts propagate to containers that bind the parent rslave. */
	if (!mount_table_has_anchor(tb, mm->path, &shared)) {
		if (mount(mm->path, mm->path, NULL, MS_BIND, NULL) < 0)
			JOB_FAIL(job, errno, "cannot bind %s onto itself: %s", mm->path,
				 strerror(errno));
	}
	if (!shared && mount(NULL, mm->path, NULL, MS_SHARED, NULL) < 0)
		JOB_FAIL(job, errno, "cannot make %s shared: %s", mm->path, strerror(errno));
	if (mount(mm->bdev_source ? mm->bdev_source : "none", mm->path, "erofs",
		  MS_RDONLY | MS_NOSUID | MS_NODEV, opts) < 0) {
		int e = errno;
		JOB_FAIL(job, e, "mount -t erofs -o %s %s %s: %s%s", opts,
			 mm->bdev_source ? mm->bdev_source : "none", mm->path, strerror(e),
			 e == ENOENT || e == EIO
				 ? " (is the model in the catalogue? see the daemon's log)"
				 : "");
	}
	return 0;
}

/* libmount's context runs mount.nfs, which resolves the server and negotiates the version. */
static int mount_nfs(struct job *job)
{
	const struct managed_mount *mm = job->mm;
	struct libmnt_context *cxt = mnt_new_context();
	char buf[160] = "", opts[1024];
	int rc, ex;

	if (!cxt)
		JOB_FAIL(job, ENOMEM, "out of memory");
	/* The daemon only reads the origin: always read-only, no devices, no setuid. */
	if (snprintf(opts, sizeof(opts), "%s,ro,nosuid,nodev", mm->options) >= (int)sizeof(opts)) {
		mnt_free_context(cxt);
		JOB_FAIL(job, E2BIG, "NFS mount options too long");
	}
	if (mnt_context_set_fstype(cxt, "nfs") < 0 || mnt_context_set_source(cxt, mm->source) < 0 ||
	    mnt_context_set_target(cxt, mm->path) < 0 || mnt_context_set_options(cxt, opts) < 0) {
		mnt_free_context(cxt);
		JOB_FAIL(job, ENOMEM, "out of memory");
	}
	/* No fstab lookups: the configuration says everything. */
	mnt_context_set_optsmode(cxt, MNT_OMODE_IGNORE);
	rc = mnt_context_mount(cxt);
	ex = mnt_context_get_excode(cxt, rc, buf, sizeof(buf));
	mnt_free_context(cxt);
	if (ex != MNT_EX_SUCCESS)
		JOB_FAIL(job, EIO, "mount -t nfs -o %s %s %s: %s", mm->options, mm->source,
			 mm->path, buf[0] ? buf : "failed");
	return 0;
}

/* The nearest existing ancestor of path (or path) is on the cache volume: refuse before
 * creating anything there. */
static bool on_cache_volume(const char *path, dev_t cache_dev)
{
	_cleanup_free_ char *p = strdup(path);
	struct stat st;

	while (p && cache_dev) {
		char *slash;
		if (stat(p, &st) == 0)
			return st.st_dev == cache_dev;
		slash = strrchr(p, '/');
		if (!slash || slash == p)
			return false;
		*slash = '\0';
	}
	return false;
}

static void run_mount(struct job *job)
{
	const struct managed_mount *mm = job->mm;
	struct libmnt_table *tb;
	int r;

	if (mm->kind == KIND_MODEL && on_cache_volume(mm->path, job->cache_dev)) {
		snprintf(job->message, sizeof(job->message),
			 "%s is on the cache volume: choose a mount point elsewhere (e.g. "
			 "/models/NAME)",
			 mm->path);
		job->result = -EXDEV;
		return;
	}
	r = mkdir_parents(mm->path);

	if (r < 0) {
		snprintf(job->message, sizeof(job->message), "cannot create %s: %s", mm->path,
			 strerror(-r));
		job->result = r;
		return;
	}
	tb = read_mountinfo();
	if (!tb) {
		snprintf(job->message, sizeof(job->message), "cannot read " MOUNTINFO);
		job->result = -EIO;
		return;
	}
	if (mm->bdev_source ? mount_table_has_fs(tb, mm->path, "erofs", NULL) &&
				      !mount_table_has_fs(tb, mm->path, "erofs", mm->bdev_source)
			    : job->replace_stale && table_has(tb, mm)) {
		/* Its objects belonged to the previous daemon (no restore), or its block devices
		 * are not the model's now (the previous daemon's, not served again): every read
		 * of it would fail. Detach the EROFS mount (the anchor stays) and mount the model
		 * again; open files keep the old mount until they close. */
		if (umount2(mm->path, MNT_DETACH) < 0) {
			snprintf(job->message, sizeof(job->message),
				 "cannot detach the stale mount at %s: %s", mm->path,
				 strerror(errno));
			job->result = -errno;
			mnt_unref_table(tb);
			return;
		}
		mnt_unref_table(tb);
		tb = read_mountinfo();
		if (!tb) {
			snprintf(job->message, sizeof(job->message), "cannot read " MOUNTINFO);
			job->result = -EIO;
			return;
		}
	}
	if (table_has(tb, mm)) { /* already there (adopted) */
		job->kept = true;
		job->result = 0;
	} else if (mm->kind == KIND_NFS)
		mount_nfs(job);
	else
		mount_model(job, tb);
	mnt_unref_table(tb);
}

static void run_probe(struct job *job)
{
	const struct managed_mount *mm = job->mm;
	uint32_t magic = mm->kind == KIND_NFS ? NFS_MAGIC : EROFS_MAGIC;
	struct statfs sfs;
	struct stat st;

	if (statfs(mm->path, &sfs) < 0 || stat(mm->path, &st) < 0)
		job->result = -errno;
	else if ((uint32_t)sfs.f_type != magic)
		job->result = -ENOENT; /* what is there is not our mount */
	else
		job->result = 0;
}

static void *job_thread(void *arg)
{
	struct job *job = arg;
	struct job_queue *q = job->q;
	const struct managed_mount *mm = job->mm;
	uint64_t one = 1;

	switch (job->kind) {
	case JOB_MOUNT:
		run_mount(job);
		break;
	case JOB_DETACH:
	case JOB_UNMOUNT:
		/* Lazy: readers with open files keep them; nothing under the mount point is
		 * touched. An unmount by request also drops the anchor of a model mount. */
		if (umount2(mm->path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
			job->result = -errno;
			snprintf(job->message, sizeof(job->message), "umount -l %s: %s", mm->path,
				 strerror(errno));
		} else if (job->kind == JOB_UNMOUNT && mm->kind == KIND_MODEL) {
			struct libmnt_table *tb = read_mountinfo();
			bool shared;
			if (tb && mount_table_has_anchor(tb, mm->path, &shared))
				umount2(mm->path, MNT_DETACH);
			mnt_unref_table(tb);
		}
		break;
	case JOB_PROBE:
		run_probe(job);
		break;
	}
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		free(job);
	} else {
		job->next = q->done;
		q->done = job;
		if (write(q->efd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow in practice; the loop drains the list */
		}
		pthread_mutex_unlock(&q->lock);
	}
	job_queue_unref(q);
	return NULL;
}

/* ---- loop thread ---- */

static int start_job(struct mounts *m, struct managed_mount *mm, enum job_kind kind)
{
	struct job *job = calloc(1, sizeof(*job));
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	if (!job)
		return -ENOMEM;
	job->q = m->q;
	job->mm = mm;
	job->kind = kind;
	job->generation = mm->generation;
	job->cache_dev = m->cache_dev;
	job->replace_stale = kind == JOB_MOUNT && mm->replace_stale;
	pthread_mutex_lock(&m->q->lock);
	m->q->refs++;
	pthread_mutex_unlock(&m->q->lock);
	mm->refs++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	r = -pthread_create(&tid, &attr, job_thread, job);
	pthread_attr_destroy(&attr);
	if (r < 0) {
		mm->refs--;
		job_queue_unref(m->q);
		free(job);
		return log_warn_errno(r, "cannot start a thread for %s %s", kind_name(mm),
				      mm->name);
	}
	return 0;
}

static void set_error(struct managed_mount *mm, int level, int err, const char *msg)
{
	/* Once per change of the error, not once per attempt. */
	if (streq(mm->last_error, msg))
		return;
	snprintf(mm->last_error, sizeof(mm->last_error), "%s", msg);
	log_full_errno(level, 0, "%s %s: %s", kind_name(mm), mm->name, msg);
}

static void mount_done(struct mounts *m, struct managed_mount *mm, struct job *job);

/* The front end could not make the model's devices: a failed mount attempt. */
static void attach_failed(struct mounts *m, struct managed_mount *mm, int err)
{
	struct job job = { .mm = mm, .kind = JOB_MOUNT, .result = err };

	snprintf(job.message, sizeof(job.message),
		 "cannot make the block devices of model %s: %s%s", mm->name, strerror(-err),
		 err == -ENOENT ? " (is the model in the catalogue?)" : " (see the daemon's log)");
	mount_done(m, mm, &job);
}

static void on_attached(void *ctx, int result, const char *source, const char *options)
{
	struct managed_mount *mm = ctx;
	struct mounts *m = mm->m;
	char *src, *opts;

	mm->attaching = false;
	if (mm->removed || mm->state != ST_MOUNTING) {
		mm_unref(mm);
		return;
	}
	if (result < 0) {
		attach_failed(m, mm, result);
		mm_unref(mm);
		return;
	}
	src = strdup(source);
	opts = strdup(options);
	if (!src || !opts) {
		free(src);
		free(opts);
		attach_failed(m, mm, -ENOMEM);
		mm_unref(mm);
		return;
	}
	free(mm->bdev_source);
	free(mm->bdev_options);
	mm->bdev_source = src;
	mm->bdev_options = opts;
	if (start_job(m, mm, JOB_MOUNT) < 0) {
		mm->state = ST_PENDING;
		mm->next_attempt_ms = loop_now_ms() + MOUNT_BACKOFF_FIRST_MS;
	}
	mm_unref(mm);
}

static void start_mount(struct mounts *m, struct managed_mount *mm)
{
	mm->state = ST_MOUNTING;
	mm->op_started_ms = loop_now_ms();
	mm->op_stuck_logged = false;
	if (m->bdev && mm->kind == KIND_MODEL) {
		/* Devices first; the mount job starts when they serve (maybe within this call). */
		int r;
		mm->refs++;
		mm->attaching = true;
		r = m->bdev->attach(m->bdev_userdata, mm->name, on_attached, mm);
		if (r < 0) {
			mm->attaching = false;
			attach_failed(m, mm, r);
			mm_unref(mm);
		}
		return;
	}
	if (start_job(m, mm, JOB_MOUNT) < 0) {
		mm->state = ST_PENDING;
		mm->next_attempt_ms = loop_now_ms() + MOUNT_BACKOFF_FIRST_MS;
	}
}

static void start_detach(struct mounts *m, struct managed_mount *mm, const char *why)
{
	log_warn("%s %s at %s: %s: detaching it (umount -l) and mounting again", kind_name(mm),
		 mm->name, mm->path, why);
	if (!mm->lost_at_ms) {
		mm->lost_at_ms = loop_now_ms();
		mm->losses++;
	}
	mm->generation++;
	mm->probe_running = false;
	mm->answering = false;
	mm->state = ST_DETACHING;
	mm->op_started_ms = loop_now_ms();
	if (start_job(m, mm, JOB_DETACH) < 0) {
		mm->state = ST_PENDING;
		mm->next_attempt_ms = loop_now_ms() + MOUNT_BACKOFF_FIRST_MS;
	}
}

static void save_state(struct mounts *m)
{
	struct mount_spec *specs;
	size_t n = 0, cap = 0;
	_cleanup_free_ char *text = NULL, *tmp = NULL;
	FILE *f;

	for (struct managed_mount *mm = m->list; mm; mm = mm->next)
		cap++;
	specs = calloc(cap ? cap : 1, sizeof(*specs));
	if (!specs)
		return;
	for (struct managed_mount *mm = m->list; mm; mm = mm->next)
		if (!mm->removed && !mm->from_config && mm->persisted)
			specs[n++] = (struct mount_spec){ mm->name, mm->path, mm->options };
	text = mount_state_format(specs, n);
	free(specs);
	if (!text || asprintf(&tmp, "%s.tmp", m->state_path) < 0)
		return;
	f = fopen(tmp, "we");
	if (!f) {
		log_warn_errno(errno,
			       "cannot write %s: runtime mounts will not come back after "
			       "a restart",
			       tmp);
		return;
	}
	fputs(text, f);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0 || fclose(f) != 0 ||
	    rename(tmp, m->state_path) < 0) {
		log_warn_errno(errno, "cannot write %s", m->state_path);
		unlink(tmp);
	}
}

static void remove_mount(struct mounts *m, struct managed_mount *mm)
{
	if (m->bdev && mm->kind == KIND_MODEL) {
		if (mm->attaching) {
			m->bdev->cancel(m->bdev_userdata, mm->name, mm);
			mm->attaching = false;
			mm_unref(mm); /* the reference of the attach */
		}
		m->bdev->detach(m->bdev_userdata, mm->name);
	}
	for (struct managed_mount **p = &m->list; *p; p = &(*p)->next)
		if (*p == mm) {
			*p = mm->next;
			break;
		}
	mm->removed = true;
	mm_unref(mm);
}

static void finish_waiter(struct managed_mount *mm, int err, const char *msg)
{
	struct control_conn *conn = mm->waiter;

	if (!conn)
		return;
	mm->waiter = NULL;
	if (err && msg && *msg)
		control_reply(conn, "%s", msg);
	control_finish(conn, err);
}

static void mount_done(struct mounts *m, struct managed_mount *mm, struct job *job)
{
	uint64_t now = loop_now_ms();

	if (job->kind == JOB_MOUNT)
		mm->replace_stale = false; /* once tried, later mounts in place are ours */
	if (job->result == 0) {
		mm->state = ST_MOUNTED;
		mm->generation++;
		mm->failed_attempts = 0;
		mm->health.consecutive_failures = 0;
		mm->answering = true;
		mm->last_error[0] = '\0';
		if (mm->lost_at_ms) {
			mm->remounts++;
			mm->last_recovery = time(NULL);
			mm->last_recovery_ms = now - mm->lost_at_ms;
			log_notice("%s %s: mounted again at %s, %llu ms after the loss",
				   kind_name(mm), mm->name, mm->path,
				   (unsigned long long)mm->last_recovery_ms);
			mm->lost_at_ms = 0;
		} else if (job->kept) {
			log_info("%s %s: the mount at %s is in place: kept", kind_name(mm),
				 mm->name, mm->path);
		} else {
			log_info("%s %s: mounted at %s", kind_name(mm), mm->name, mm->path);
		}
		if (!mm->from_config && !mm->persisted) {
			mm->persisted = true;
			save_state(m);
		}
		finish_waiter(mm, 0, NULL);
		return;
	}
	if (!mm->from_config && !mm->persisted) {
		/* A first `blobcachectl mount` that fails is not kept: the operator fixes it and
		 * asks again. */
		log_warn("model %s: %s", mm->name, job->message);
		finish_waiter(mm, job->result, job->message);
		remove_mount(m, mm);
		return;
	}
	mm->failed_attempts++;
	mm->state = ST_PENDING;
	mm->next_attempt_ms = now + mount_backoff_ms(mm->failed_attempts);
	set_error(mm, LOG_WARNING, job->result, job->message);
	finish_waiter(mm, job->result, job->message);
}

static void probe_done(struct mounts *m, struct managed_mount *mm, struct job *job)
{
	enum mount_probe_result pr;
	enum mount_action action;

	mm->probes_outstanding--;
	if (job->generation != mm->generation || mm->state != ST_MOUNTED)
		return; /* about a mount that has been replaced since */
	mm->probe_running = false;
	if (job->result == 0)
		pr = MOUNT_PROBE_OK;
	else if (job->result == -ESTALE || job->result == -ENOTCONN)
		pr = MOUNT_PROBE_STALE;
	else if (job->result == -ENOENT)
		pr = MOUNT_PROBE_MISSING;
	else
		pr = MOUNT_PROBE_FAILED;
	if (pr == MOUNT_PROBE_MISSING) {
		/* mountinfo decides: the check runs on the next event or tick. */
		mm->answering = false;
		return;
	}
	if (pr != MOUNT_PROBE_OK) {
		mm->probe_failures++;
		if (mm->answering)
			log_warn_errno(job->result, "%s %s at %s: probe failed", kind_name(mm),
				       mm->name, mm->path);
	} else if (!mm->answering) {
		log_info("%s %s at %s: answering again", kind_name(mm), mm->name, mm->path);
	}
	mm->answering = pr == MOUNT_PROBE_OK;
	action = mount_health_update(&mm->health, pr, MOUNT_FAILURE_THRESHOLD);
	if (action != MOUNT_ACTION_NONE)
		start_detach(m, mm,
			     pr == MOUNT_PROBE_STALE ? "its root is stale" : "probes failing");
}

static void on_jobs(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct mounts *m = userdata;
	struct job *list;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&m->q->lock);
	list = m->q->done;
	m->q->done = NULL;
	pthread_mutex_unlock(&m->q->lock);
	while (list) {
		struct job *job = list;
		struct managed_mount *mm = job->mm;

		list = job->next;
		if (!mm->removed) {
			switch (job->kind) {
			case JOB_MOUNT:
				mount_done(m, mm, job);
				break;
			case JOB_DETACH:
				mm->state = ST_PENDING;
				mm->next_attempt_ms = 0; /* at once */
				break;
			case JOB_UNMOUNT:
				if (job->result < 0) {
					mm->state = ST_MOUNTED;
					finish_waiter(mm, job->result, job->message);
				} else {
					log_info("model %s: unmounted from %s (on request)",
						 mm->name, mm->path);
					finish_waiter(mm, 0, NULL);
					remove_mount(m, mm);
					save_state(m);
				}
				break;
			case JOB_PROBE:
				probe_done(m, mm, job);
				break;
			}
		} else if (job->kind == JOB_PROBE) {
			mm->probes_outstanding--;
		}
		mm_unref(mm);
		free(job);
	}
	mounts_recheck(m, NULL);
}

/* Compare what is managed with mountinfo; start what is due. */
static void check_all(struct mounts *m)
{
	struct libmnt_table *tb = read_mountinfo();
	uint64_t now = loop_now_ms();

	if (!tb) {
		log_debug("cannot read " MOUNTINFO);
		return;
	}
	for (struct managed_mount *mm = m->list, *next; mm; mm = next) {
		next = mm->next;
		switch (mm->state) {
		case ST_MOUNTED:
			if (table_has(tb, mm))
				break;
			log_warn("%s %s: gone from %s (unmounted from outside?): mounting it again",
				 kind_name(mm), mm->name, mm->path);
			mm->losses++;
			mm->lost_at_ms = now;
			mm->generation++;
			mm->probe_running = false;
			mm->answering = false;
			start_mount(m, mm);
			break;
		case ST_PENDING:
			if (table_has(tb, mm) && mm->replace_stale) {
				log_notice("%s %s: the mount at %s predates this cache binding (no "
					   "restore: its reads would fail); mounting it again",
					   kind_name(mm), mm->name, mm->path);
				mm->losses++;
				mm->lost_at_ms = now;
				start_mount(m, mm);
				break;
			}
			/* Block devices: the attach says which devices are the model's, and the
			 * mount job keeps the mount if it is of those. */
			if (!m->bdev && table_has(tb, mm) && !mm->lost_at_ms &&
			    !mm->failed_attempts && !mm->waiter) {
				log_info("%s %s: adopting the existing mount at %s", kind_name(mm),
					 mm->name, mm->path);
				mm->state = ST_MOUNTED;
				mm->generation++;
				mm->answering = true;
				break;
			}
			if (now >= mm->next_attempt_ms)
				start_mount(m, mm);
			break;
		case ST_MOUNTING:
		case ST_DETACHING:
		case ST_UNMOUNTING:
			if (now - mm->op_started_ms > MOUNT_OP_TIMEOUT_MS && !mm->op_stuck_logged) {
				mm->op_stuck_logged = true;
				log_warn("%s %s: %s %s has not returned for %u s", kind_name(mm),
					 mm->name, state_names[mm->state], mm->path,
					 MOUNT_OP_TIMEOUT_MS / 1000);
			}
			break;
		}
	}
	mnt_unref_table(tb);
}

static void probe_all(struct mounts *m, bool fresh)
{
	uint64_t now = loop_now_ms();

	for (struct managed_mount *mm = m->list, *next; mm; mm = next) {
		next = mm->next;
		if (mm->state != ST_MOUNTED)
			continue;
		if (mm->probe_running) {
			if (fresh || now - mm->probe_started_ms < MOUNT_PROBE_TIMEOUT_MS)
				continue;
			/* Counted once per tick while it hangs. */
			if (mm->answering)
				log_warn("%s %s at %s: probe not back after %llu ms", kind_name(mm),
					 mm->name, mm->path,
					 (unsigned long long)(now - mm->probe_started_ms));
			mm->answering = false;
			mm->probe_failures++;
			if (mount_health_update(&mm->health, MOUNT_PROBE_HUNG,
						MOUNT_FAILURE_THRESHOLD) != MOUNT_ACTION_NONE)
				start_detach(m, mm, "probes hang");
			continue;
		}
		if (mm->probes_outstanding >= MAX_STUCK_PROBES)
			continue;
		if (start_job(m, mm, JOB_PROBE) == 0) {
			mm->probe_running = true;
			mm->probe_started_ms = now;
			mm->probes_outstanding++;
		}
	}
}

static void on_tick(struct loop *loop, void *userdata)
{
	struct mounts *m = userdata;

	check_all(m);
	probe_all(m, false);
}

static void on_monitor(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct mounts *m = userdata;
	const char *file;
	int type;

	while (mnt_monitor_next_change(m->monitor, &file, &type) == 0)
		;
	check_all(m);
}

void mounts_recheck(struct mounts *m, const char *why)
{
	if (!m || !m->started)
		return;
	if (why) {
		for (struct managed_mount *mm = m->list; mm; mm = mm->next)
			if (mm->state == ST_PENDING) {
				mm->failed_attempts = 0;
				mm->next_attempt_ms = 0;
			}
		log_info("%s: checking the managed mounts now", why);
	}
	check_all(m);
	if (why)
		probe_all(m, true);
}

static struct managed_mount *find_model(struct mounts *m, const char *name)
{
	for (struct managed_mount *mm = m->list; mm; mm = mm->next)
		if (mm->kind == KIND_MODEL && streq(mm->name, name))
			return mm;
	return NULL;
}

static struct managed_mount *find_path(struct mounts *m, const char *path)
{
	for (struct managed_mount *mm = m->list; mm; mm = mm->next)
		if (streq(mm->path, path))
			return mm;
	return NULL;
}

static int add_mount(struct mounts *m, enum mount_kind kind, const char *name, const char *path,
		     const char *options, const char *source, bool from_config,
		     struct managed_mount **out)
{
	struct managed_mount *mm = calloc(1, sizeof(*mm)), **tail;

	if (!mm)
		return -ENOMEM;
	mm->m = m;
	mm->refs = 1;
	mm->kind = kind;
	mm->from_config = from_config;
	mm->persisted = !from_config;
	mm->name = strdup(name);
	mm->path = strdup(path);
	mm->options = options ? strdup(options) : NULL;
	mm->source = source ? strdup(source) : NULL;
	mm->domain = kind == KIND_MODEL && m->domain ? strdup(m->domain) : NULL;
	if (!mm->name || !mm->path || (options && !mm->options) || (source && !mm->source) ||
	    (kind == KIND_MODEL && m->domain && !mm->domain)) {
		mm_unref(mm);
		return -ENOMEM;
	}
	/* "/mnt/m/" and "/mnt/m" are one mount point: mountinfo has no trailing slash. */
	for (size_t n = strlen(mm->path); n > 1 && mm->path[n - 1] == '/'; n--)
		mm->path[n - 1] = '\0';
	for (tail = &m->list; *tail; tail = &(*tail)->next)
		;
	*tail = mm;
	if (out)
		*out = mm;
	return 0;
}

static int load_state(struct mounts *m)
{
	_cleanup_fclose_ FILE *f = fopen(m->state_path, "re");
	_cleanup_free_ char *text = NULL;
	struct mount_spec *specs = NULL;
	size_t n = 0, len = 0;
	char err[256] = "";
	int r;

	if (!f)
		return errno == ENOENT ? 0 : log_warn_errno(errno, "cannot read %s", m->state_path);
	if (getdelim(&text, &len, '\0', f) < 0)
		return 0; /* empty */
	r = mount_state_parse(text, &specs, &n, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r,
				       "%s: %s: fix or remove the file (it lists the models "
				       "mounted with blobcachectl mount)",
				       m->state_path, err);
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (find_model(m, specs[i].name) || find_path(m, specs[i].path)) {
			log_warn("%s: model %s at %s is also in the configuration: the "
				 "configuration wins",
				 m->state_path, specs[i].name, specs[i].path);
			continue;
		}
		r = add_mount(m, KIND_MODEL, specs[i].name, specs[i].path, specs[i].options, NULL,
			      false, NULL);
	}
	mount_specs_free(specs, n);
	return r;
}

int mounts_new(struct loop *loop, const struct config *cfg, struct mounts **out)
{
	struct mounts *m = calloc(1, sizeof(*m));
	struct stat st;
	int r = 0;

	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->monitor_fd = -EBADF;
	m->timer = -1;
	m->q = calloc(1, sizeof(*m->q));
	if (config_domain(cfg))
		m->domain = strdup(config_domain(cfg));
	if (!m->q || (config_domain(cfg) && !m->domain) ||
	    asprintf(&m->state_path, "%s/mounts", cfg->state_dir) < 0) {
		free(m->domain);
		free(m->q);
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->q->lock, NULL);
	m->q->refs = 1;
	m->q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->q->efd < 0) {
		r = -errno;
		mounts_free(m);
		return r;
	}
	if (stat(cfg->cache_dir, &st) == 0)
		m->cache_dev = st.st_dev;
	if (cfg->origin_nfs)
		r = add_mount(m, KIND_NFS, "origin", cfg->origin_path,
			      cfg->nfs_options ? cfg->nfs_options : MOUNT_NFS_DEFAULT_OPTIONS,
			      cfg->origin_nfs, true, NULL);
	for (size_t i = 0; r >= 0 && i < cfg->n_models; i++)
		if (cfg->models[i].mount)
			r = add_mount(m, KIND_MODEL, cfg->models[i].name, cfg->models[i].mount,
				      cfg->models[i].options, NULL, true, NULL);
	if (r >= 0)
		r = load_state(m);
	if (r < 0) {
		mounts_free(m);
		return r;
	}
	*out = m;
	return 0;
}

/* ---- control verbs ---- */

static void cancel_waiter(struct control_conn *conn, void *userdata)
{
	struct managed_mount *mm = userdata;

	if (mm->waiter == conn)
		mm->waiter = NULL;
}

static int ctl_mount(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct mounts *m = userdata;
	struct managed_mount *mm;
	const char *name, *path, *options;
	int r;

	if (argc < 3 || argc > 4)
		return control_error(conn, "usage: mount MODEL PATH [OPTIONS]"), -EINVAL;
	name = argv[1];
	path = argv[2];
	options = argc == 4 ? argv[3] : NULL;
	if (!name_is_valid_model(name, strlen(name)))
		return control_error(conn, "'%s' is not a valid model name", name), -EINVAL;
	if (path[0] != '/')
		return control_error(conn, "mount point '%s': give an absolute path", path),
		       -EINVAL;
	if (options && strstr(options, "fsid="))
		return control_error(conn, "options: fsid= is the model name and is set by the "
					   "daemon"),
		       -EINVAL;
	mm = find_model(m, name);
	if (mm) {
		if (streq(mm->path, path) ||
		    (strncmp(mm->path, path, strlen(mm->path)) == 0 &&
		     strspn(path + strlen(mm->path), "/") == strlen(path + strlen(mm->path)))) {
			control_reply(conn, "model %s is already managed at %s (%s)", name,
				      mm->path, state_names[mm->state]);
			return 0;
		}
		return control_error(conn,
				     "model %s is already mounted at %s: one managed mount per "
				     "model (umount it first)",
				     name, mm->path),
		       -EEXIST;
	}
	if (find_path(m, path))
		return control_error(conn, "%s is already the mount point of %s %s", path,
				     kind_name(find_path(m, path)), find_path(m, path)->name),
		       -EEXIST;
	r = add_mount(m, KIND_MODEL, name, path, options, NULL, false, &mm);
	if (r < 0)
		return r;
	mm->persisted = false; /* written once it is mounted */
	mm->waiter = conn;
	control_set_cancel(conn, cancel_waiter, mm);
	start_mount(m, mm);
	return CONTROL_LATER;
}

static int ctl_umount(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct mounts *m = userdata;
	struct managed_mount *mm;

	if (argc != 2)
		return control_error(conn, "usage: umount MODEL"), -EINVAL;
	mm = find_model(m, argv[1]);
	if (!mm)
		return control_error(conn, "model %s is not mounted by the daemon", argv[1]),
		       -ENOENT;
	if (mm->from_config)
		return control_error(conn,
				     "model %s is mounted by the configuration ([model %s] mount "
				     "= %s): remove it there and restart the daemon",
				     mm->name, mm->name, mm->path),
		       -EPERM;
	if (mm->state != ST_MOUNTED && mm->state != ST_PENDING)
		return control_error(conn, "model %s is busy (%s): try again", mm->name,
				     state_names[mm->state]),
		       -EBUSY;
	if (mm->waiter)
		return control_error(conn, "model %s: another request is waiting", mm->name),
		       -EBUSY;
	mm->state = ST_UNMOUNTING;
	mm->op_started_ms = loop_now_ms();
	mm->generation++;
	mm->waiter = conn;
	control_set_cancel(conn, cancel_waiter, mm);
	if (start_job(m, mm, JOB_UNMOUNT) < 0) {
		mm->waiter = NULL;
		mm->state = ST_MOUNTED;
		return -ENOMEM;
	}
	return CONTROL_LATER;
}

static int ctl_list(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	struct mounts *m = userdata;

	for (struct managed_mount *mm = m->list; mm; mm = mm->next)
		control_reply(conn, "%s %s %s %s%s remounts=%llu%s%s%s", kind_name(mm), mm->name,
			      mm->path, state_names[mm->state],
			      mm->state == ST_MOUNTED && !mm->answering ? ",not-answering" : "",
			      (unsigned long long)mm->remounts, mm->from_config ? " (config)" : "",
			      mm->last_error[0] && mm->state != ST_MOUNTED ? " error: " : "",
			      mm->last_error[0] && mm->state != ST_MOUNTED ? mm->last_error : "");
	return 0;
}

int mounts_start(struct mounts *m, struct control *ctl, bool fresh_cache)
{
	int r;

	r = loop_add_fd(m->loop, m->q->efd, EPOLLIN, on_jobs, m);
	if (r < 0)
		return log_error_errno(r, "mounts: cannot join the event loop");
	m->monitor = mnt_new_monitor();
	if (!m->monitor || mnt_monitor_enable_kernel(m->monitor, 1) < 0 ||
	    (m->monitor_fd = mnt_monitor_get_fd(m->monitor)) < 0 ||
	    loop_add_fd(m->loop, m->monitor_fd, EPOLLIN, on_monitor, m) < 0) {
		/* The probe still notices, within a second. */
		log_warn("mounts: libmount's monitor is not available: mounts are checked every "
			 "second only");
		m->monitor_fd = -EBADF;
	}
	r = m->timer = loop_add_periodic(m->loop, MOUNT_PROBE_INTERVAL_MS, on_tick, m);
	if (r < 0)
		return log_error_errno(r, "mounts: cannot start the probe timer");
	if (ctl) {
		control_register(ctl, "mount",
				 "mount MODEL PATH [OPTIONS]: mount a model there, "
				 "now and after restarts",
				 ctl_mount, m);
		control_register(ctl, "umount", "umount MODEL: unmount a model mounted with mount",
				 ctl_umount, m);
		control_register(ctl, "mounts", "mounts: the managed mounts and their state",
				 ctl_list, m);
	}
	m->started = true;
	for (struct managed_mount *mm = m->list; mm; mm = mm->next)
		mm->replace_stale = fresh_cache && mm->kind == KIND_MODEL;
	check_all(m); /* adopt or mount */
	return 0;
}

bool mounts_model_state(const struct mounts *m, const char *name, const char **path, bool *up)
{
	for (const struct managed_mount *mm = m ? m->list : NULL; mm; mm = mm->next) {
		if (mm->kind != KIND_MODEL || mm->removed || !streq(mm->name, name))
			continue;
		*path = mm->path;
		*up = mm->state == ST_MOUNTED && mm->answering;
		return true;
	}
	return false;
}

bool mounts_ready(const struct mounts *m, char *why, size_t why_len)
{
	size_t used = why_len ? strlen(why) : 0;
	bool ready = true;

	if (!m)
		return true;
	for (const struct managed_mount *mm = m->list; mm; mm = mm->next) {
		const char *problem = NULL;

		if (mm->state != ST_MOUNTED)
			problem = mm->state == ST_PENDING && mm->last_error[0]
					  ? mm->last_error
					  : state_names[mm->state];
		else if (!mm->answering)
			problem = "not answering";
		if (!problem)
			continue;
		ready = false;
		if (used < why_len)
			used += (size_t)snprintf(why + used, why_len - used, "%s %s at %s: %s\n",
						 mm->kind == KIND_NFS ? "origin mount"
								      : "model mount",
						 mm->name, mm->path, problem);
	}
	return ready;
}

static void print_labels(const struct managed_mount *mm, FILE *f)
{
	fprintf(f, "{kind=\"%s\",name=\"%s\",path=\"", kind_name(mm), mm->name);
	for (const char *p = mm->path; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputs("\"}", f);
}

void mounts_format_metrics(const struct mounts *m, FILE *f)
{
	static const struct {
		const char *name, *type, *help;
	} metrics[] = {
		{ "mount_up", "gauge", "1 while the managed mount is in place and answering" },
		{ "mount_losses_total", "counter", "times the mount was found gone or dead" },
		{ "mount_remounts_total", "counter", "times the daemon mounted it again" },
		{ "mount_probe_failures_total", "counter", "probes that failed or hung" },
		{ "mount_last_recovery_timestamp_seconds", "gauge",
		  "wall clock of the last remount (0: none)" },
		{ "mount_last_recovery_seconds", "gauge", "loss to remount, last time" },
	};

	if (!m || !m->list)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(metrics); i++) {
		fprintf(f, "# HELP blobcached_%s %s\n# TYPE blobcached_%s %s\n", metrics[i].name,
			metrics[i].help, metrics[i].name, metrics[i].type);
		for (const struct managed_mount *mm = m->list; mm; mm = mm->next) {
			double v = 0;
			switch (i) {
			case 0:
				v = mm->state == ST_MOUNTED && mm->answering;
				break;
			case 1:
				v = (double)mm->losses;
				break;
			case 2:
				v = (double)mm->remounts;
				break;
			case 3:
				v = (double)mm->probe_failures;
				break;
			case 4:
				v = (double)mm->last_recovery;
				break;
			case 5:
				v = (double)mm->last_recovery_ms / 1000.0;
				break;
			}
			fprintf(f, "blobcached_%s", metrics[i].name);
			print_labels(mm, f);
			fprintf(f, " %g\n", v);
		}
	}
}

void mounts_set_blockdev(struct mounts *m, const struct mounts_blockdev_ops *ops, void *userdata)
{
	m->bdev = ops;
	m->bdev_userdata = userdata;
}

void mounts_print_status(const struct mounts *m, FILE *f)
{
	if (!m)
		return;
	for (const struct managed_mount *mm = m->list; mm; mm = mm->next)
		fprintf(f, "mount %s %s %s %s%s losses=%llu remounts=%llu last_recovery_ms=%llu\n",
			kind_name(mm), mm->name, mm->path, state_names[mm->state],
			mm->state == ST_MOUNTED && !mm->answering ? ",not-answering" : "",
			(unsigned long long)mm->losses, (unsigned long long)mm->remounts,
			(unsigned long long)mm->last_recovery_ms);
}

void mounts_free(struct mounts *m)
{
	if (!m)
		return;
	if (m->timer >= 0)
		loop_remove_fd(m->loop, m->timer);
	if (m->monitor_fd >= 0)
		loop_remove_fd(m->loop, m->monitor_fd);
	mnt_unref_monitor(m->monitor);
	if (m->q) {
		if (m->started)
			loop_remove_fd(m->loop, m->q->efd);
		pthread_mutex_lock(&m->q->lock);
		m->q->closed = true;
		pthread_mutex_unlock(&m->q->lock);
		/* Completed jobs still hold references to their mounts. */
		for (struct job *j = m->q->done; j; j = j->next)
			mm_unref(j->mm);
		close(m->q->efd);
		job_queue_unref(m->q);
	}
	while (m->list) {
		struct managed_mount *mm = m->list;
		m->list = mm->next;
		mm->removed = true;
		mm_unref(mm); /* threads still running keep theirs (leaked at exit) */
	}
	free(m->state_path);
	free(m->domain);
	free(m);
}
