// SPDX-License-Identifier: GPL-2.0-or-later
/* blobcached: parses arguments, sets up, runs the loop, tears down. */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "ops/caps.h"
#include "configfile.h"
#include "ops/cachectl.h"
#include "ops/cachevol.h"
#include "ops/catsync.h"
#include "ops/control.h"
#include "core/fill.h"
#include "frontend/holder.h"
#include "ops/probe.h"
#include "io.h"
#include "log.h"
#include "ops/linkwatch.h"
#include "core/loop.h"
#include "macros.h"
#include "core/models.h"
#include "ops/mounts.h"
#include "frontend/ondemand.h"
#include "frontend/ublk.h"
#include "core/origin.h"
#include "ops/sdnotify.h"
#include "core/space.h"

#define STATUS_INTERVAL_MS 1000
/* A failure that restarting cannot mend (configuration, kernel, device held by another cache
 * daemon, unusable cache directory): the unit's RestartPreventExitStatus= stops a restart
 * storm. EX_CONFIG of sysexits.h. */
#define EXIT_NO_RESTART 78

struct daemon {
	struct config cfg;
	struct loop *loop;
	struct models *models;
	struct origin *origin;
	struct fill *fill;
	struct ondemand *od; /* on-demand front end, or NULL */
	struct ublk *ublk;   /* ublk front end, or NULL */
	int sigfd;
	char *status_path;
	char *meta_dir;
	int devfd;	 /* bound /dev/cachefiles, until ondemand_start takes it */
	bool restored;	 /* devfd came from the device holder */
	int holder_conn; /* kept open while we serve: the holder watches it */
	bool fdstored;	 /* systemd's fd store keeps the device across restarts */
	struct probe *probe;
	struct control *control;   /* run_dir/control.sock, for blobcachectl */
	struct cachectl *cachectl; /* its status, warm, evict, pin and unpin verbs */
	struct mounts *mounts;	   /* managed model mounts and the NFS origin */
	struct linkwatch *links;   /* network links down/up: re-check the mounts */
	int exit_status;	   /* on failure: 1, or EXIT_NO_RESTART */
	struct space *space;	   /* watermarks, purge, warm/evict/pin */
	struct cachevol *cachevol; /* the cache volume's health */
	struct catsync *catsync;   /* [origin] catalogue = yes */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: blobcached [OPTIONS]\n"
		   "\n"
		   "Serve EROFS model images from a local cache, filling it by range from the\n"
		   "origin, through the kernel's cachefiles on-demand mode or ublk block devices\n"
		   "([daemon] frontend = auto | ondemand | ublk).\n"
		   "\n"
		   "Options:\n"
		   "  -c, --config FILE     configuration file (default " CONFIG_DEFAULT_PATH ")\n"
		   "      --device PATH     cachefiles device (default /dev/cachefiles)\n"
		   "      --ublk-control PATH\n"
		   "                        ublk control device (default " UBLK_CONTROL_DEVICE ")\n"
		   "      --dump-config     print the effective configuration and exit\n"
		   "      --check-config    check the configuration and exit (0 if valid)\n"
		   "  -d, --debug           log at debug level (every READ)\n"
		   "  -h, --help            show this help and exit\n"
		   "  -V, --version         show the version and exit\n"
		   "\n"
		   "Status is written to <run_dir>/status every second. See blobcached(8) and\n"
		   "blobcached.conf(5).\n");
}

/* The on-demand counters, zero in ublk mode (the status and metrics keep their shape). */
static const struct ondemand_stats *od_stats(const struct daemon *d)
{
	static const struct ondemand_stats none;

	return d->od ? ondemand_get_stats(d->od) : &none;
}

static int write_status(struct daemon *d)
{
	const struct fill_stats *fs = fill_get_stats(d->fill);
	const struct ondemand_stats *os = od_stats(d);
	_cleanup_free_ char *tmp = NULL;
	FILE *f;

	if (asprintf(&tmp, "%s.tmp", d->status_path) < 0)
		return -ENOMEM;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"pid=%d\nobjects=%llu\nopens=%llu\nopens_refused=%llu\ncloses=%llu\n"
		"closes_stale=%llu\nreads=%llu\nreads_failed=%llu\nbad_messages=%llu\n"
		"fill_requests=%llu\nfill_requests_failed=%llu\nfill_requests_timed_out=%llu\n"
		"bytes_requested=%llu\nchunks_fetched=%llu\nchunks_deduped=%llu\n"
		"chunks_present=%llu\nchunks_prefetched=%llu\norigin_bytes=%llu\n"
		"origin_errors=%llu\nverify_failures=%llu\n"
		"cache_write_errors=%llu\ninflight=%llu\noldest_request_age_ms=%llu\n"
		"verify_cpu_us=%llu\n",
		(int)getpid(), os->objects, os->opens, os->opens_refused, os->closes,
		os->closes_stale, os->reads, os->reads_failed, os->bad_messages,
		(unsigned long long)fs->requests, (unsigned long long)fs->requests_failed,
		(unsigned long long)fs->requests_timed_out, (unsigned long long)fs->bytes_requested,
		(unsigned long long)fs->chunks_fetched, (unsigned long long)fs->chunks_deduped,
		(unsigned long long)fs->chunks_present, (unsigned long long)fs->chunks_prefetched,
		(unsigned long long)fs->origin_bytes, (unsigned long long)fs->origin_errors,
		(unsigned long long)fs->verify_failures, (unsigned long long)fs->cache_write_errors,
		(unsigned long long)fs->inflight, (unsigned long long)fs->oldest_request_age_ms,
		(unsigned long long)(fs->verify_cpu_ns / 1000));
	if (d->cfg.origin_url) {
		const struct origin_http_stats *hs = origin_http_get_stats(d->origin);
		fprintf(f,
			"http_requests=%llu\nhttp_attempts=%llu\nhttp_retries=%llu\n"
			"http_bytes=%llu\nhttp_failed=%llu\n",
			(unsigned long long)hs->requests, (unsigned long long)hs->attempts,
			(unsigned long long)hs->retries, (unsigned long long)hs->bytes,
			(unsigned long long)hs->failed);
	}
	fprintf(f, "frontend=%s\n", d->ublk ? "ublk" : "ondemand");
	if (d->cachevol) {
		char why[8] = "";
		fprintf(f, "cache_volume_ok=%d\n", cachevol_ready(d->cachevol, why, sizeof(why)));
	}
	if (d->ublk) {
		const struct ublk_stats *us = ublk_get_stats(d->ublk);
		fprintf(f,
			"ublk_devices=%llu\nublk_devices_added=%llu\nublk_devices_removed=%llu\n"
			"ublk_device_errors=%llu\nublk_reads=%llu\nublk_reads_cached=%llu\n"
			"ublk_reads_failed=%llu\nublk_bytes_read=%llu\n",
			us->devices, us->devices_added, us->devices_removed, us->device_errors,
			us->reads, us->reads_cached, us->reads_failed, us->bytes_read);
		ublk_print_devices(d->ublk, f);
	} else {
		ondemand_print_objects(d->od, f);
	}
	mounts_print_status(d->mounts, f);
	if (fclose(f) != 0 || rename(tmp, d->status_path) < 0) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

static void on_status_timer(struct loop *loop, void *userdata)
{
	struct daemon *d = userdata;
	static bool warned;
	int r;

	fill_check_origin(d->fill);
	r = write_status(d);

	if (r < 0 && !warned) {
		warned = true;
		log_warn_errno(r, "cannot write %s (logged once)", d->status_path);
	}
}

static void on_signal(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	switch (si.ssi_signo) {
	case SIGTERM:
	case SIGINT:
		log_info("signal %d: shutting down", (int)si.ssi_signo);
		loop_quit(loop, 0);
		break;
	default:
		break;
	}
}

static int setup_signals(struct daemon *d)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	/* A broken pipe on a log or status write must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sigfd < 0)
		return -errno;
	return loop_add_fd(d->loop, d->sigfd, EPOLLIN, on_signal, d);
}

/* One fd per open cache object, per origin connection and per probe client: take the hard
 * limit (systemd's LimitNOFILE=, or the shell's) as the soft one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug("cannot raise the fd limit: %s", strerror(errno));
	}
}

static int load_config(struct config *cfg, const char *path, bool explicit_path)
{
	char err[512] = "";
	int r = config_init_defaults(cfg);

	if (r < 0)
		return r;
	r = config_parse_file(cfg, path, err, sizeof(err));
	if (r == -ENOENT && !explicit_path)
		log_notice("%s not found: using built-in defaults", path);
	else if (r < 0)
		return log_error("configuration: %s", err), r;
	r = config_validate(cfg, err, sizeof(err));
	if (r < 0)
		return log_error("configuration %s: %s", path, err), r;
	return 0;
}

/* The bound device: from a running holder (a restart: `restore` follows), or opened and bound
 * here, then handed to a new holder so that it outlives this process. */
static int acquire_device(struct daemon *d, const char *device)
{
	int other = 0, fd, r;

	/* Under systemd with an fd store, the service manager keeps the device across restarts
	 * (and a watchdog or crash restart) instead of a device holder. */
	if (sdn_fdstore_enabled()) {
		fd = sdn_fdstore_take("cachefiles");
		if (fd >= 0) {
			log_info("took the bound cachefiles device back from systemd's fd store");
			d->devfd = fd;
			d->restored = true;
			d->fdstored = true;
			return 0;
		}
		fd = ondemand_bind(device, &d->cfg);
		if (fd < 0)
			return fd;
		d->devfd = fd;
		r = sdn_fdstore_put(fd, "cachefiles");
		if (r < 0)
			log_warn_errno(r,
				       "cannot store the device in systemd's fd store: a restart "
				       "of the service will break mounted models");
		else
			log_info("stored the bound cachefiles device in systemd's fd store");
		d->fdstored = r >= 0;
		return 0;
	}
	if (d->cfg.restart_grace_ms) {
		fd = holder_attach(d->cfg.run_dir, &d->holder_conn, &other);
		if (fd >= 0) {
			d->devfd = fd;
			d->restored = true;
			return 0;
		}
		if (fd == -EBUSY)
			return log_error_errno(fd,
					       "another blobcached (pid %d) is serving this cache; "
					       "stop it first",
					       other);
		if (fd != -ENOENT)
			log_warn_errno(fd, "device holder in %s did not answer; binding afresh",
				       d->cfg.run_dir);
	}
	fd = ondemand_bind(device, &d->cfg);
	if (fd < 0)
		return fd; /* logged with cause and fix */
	d->devfd = fd;
	if (d->cfg.restart_grace_ms) {
		r = holder_spawn(d->cfg.run_dir, fd, d->cfg.restart_grace_ms, NULL,
				 &d->holder_conn);
		if (r < 0)
			log_warn_errno(r, "cannot start the device holder: a restart of the daemon "
					  "will break mounted models");
	}
	return 0;
}

/* ublk mode with restart_grace: the devices outlive the daemon by themselves (user recovery);
 * a holder, found or started here (before any thread), stops them when no daemon came back
 * within restart_grace, so that their readers get EIO rather than wait for ever. Under systemd
 * too: the unit's KillMode=process leaves the holder running across restarts and stops. */
static int acquire_ublk_holder(struct daemon *d, const char *control)
{
	int other = 0, fd, r;

	if (!d->cfg.restart_grace_ms)
		return 0;
	fd = holder_attach(d->cfg.run_dir, &d->holder_conn, &other);
	if (fd >= 0) {
		close(fd); /* its control fd: ublk_start opens its own */
		log_info("attached to the device holder: ublk devices of the earlier daemon are "
			 "served again");
		return 0;
	}
	if (fd == -EBUSY)
		return log_error_errno(fd,
				       "another blobcached (pid %d) is serving this cache; "
				       "stop it first",
				       other);
	if (fd != -ENOENT)
		log_warn_errno(fd, "device holder in %s did not answer; starting another",
			       d->cfg.run_dir);
	fd = open(control, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0; /* ublk_start says why */
	r = holder_spawn(d->cfg.run_dir, fd, d->cfg.restart_grace_ms, ublk_release_devices,
			 &d->holder_conn);
	close(fd);
	if (r < 0)
		log_warn_errno(r,
			       "cannot start the device holder: if the daemon does not come back, "
			       "readers of its ublk devices wait until one does");
	return 0;
}

static void on_link_change(const char *ifname, bool up, void *userdata)
{
	struct daemon *d = userdata;
	char why[64];

	snprintf(why, sizeof(why), "link %s %s", ifname, up ? "up" : "down");
	mounts_recheck(d->mounts, why);
}

/* cachefiles stopped the cache after I/O errors on the volume (its binding is dead for good)
 * and the volume answers again: exit, with the binding dropped from the fd store and the
 * device holder, so that the next start (systemd's Restart=on-failure) binds anew and replaces
 * the model mounts, whose reads would fail. */
static void on_cache_dead(void *userdata)
{
	struct daemon *d = userdata;
	_cleanup_free_ char *pidfile = NULL;
	FILE *f;
	int pid = 0;

	log_error("cachefiles stopped the cache after I/O errors and the cache volume answers "
		  "again: exiting so that the next start binds the cache anew (under systemd: "
		  "Restart=on-failure; otherwise start blobcached again)");
	if (d->fdstored && sdn_fdstore_remove("cachefiles") < 0)
		log_warn("cannot drop the dead cache binding from systemd's fd store");
	d->fdstored = false;
	if (asprintf(&pidfile, "%s/holder.pid", d->cfg.run_dir) >= 0 &&
	    (f = fopen(pidfile, "re"))) {
		if (fscanf(f, "%d", &pid) == 1 && pid > 0)
			kill(pid, SIGTERM); /* it releases the dead binding and exits */
		fclose(f);
	}
	loop_quit(d->loop, -EIO);
}

/* The probe endpoint's readiness and metrics beyond the fill core's: the managed mounts and
 * the cache volume. */
/* The fill core's locator of in-place blobs: the catalogue (fill_set_locator). */
static const struct catalogue_blob *locate_blob(void *userdata, const struct catalogue_blob *b)
{
	return models_locate(userdata, b);
}

static bool probe_extra_ready(const void *userdata, char *why, size_t why_len)
{
	const struct daemon *d = userdata;
	bool ok = mounts_ready(d->mounts, why, why_len);

	return cachevol_ready(d->cachevol, why, why_len) && ok;
}

static void probe_extra_metrics(const void *userdata, FILE *f)
{
	const struct daemon *d = userdata;

	mounts_format_metrics(d->mounts, f);
	cachevol_metrics(d->cachevol, f);
	catsync_metrics(d->catsync, f);
}

/* The cache belongs on its own volume: on the root filesystem it would fill the system disk,
 * and a missing volume mount would go unnoticed. */
static int check_not_root_fs(const struct config *cfg)
{
	struct stat dir, root;

	if (cfg->allow_root_fs || stat(cfg->cache_dir, &dir) < 0 || stat("/", &root) < 0)
		return 0; /* a missing directory is reported when binding */
	if (dir.st_dev != root.st_dev)
		return 0;
	return log_error_errno(EXDEV,
			       "cache directory %s is on the root filesystem (is the cache volume "
			       "mounted?): mount the dedicated cache volume there (see "
			       "var-cache-blobcached.mount), or set [cache] allow_root_fs = yes",
			       cfg->cache_dir);
}

/* /models: every catalogue model with its figures, managed mount and preload, as the records
 * are after the walk probe_models_wait waited for. */
static int probe_list_models(void *userdata, struct probe_model **out, size_t *n_out)
{
	struct daemon *d = userdata;
	_cleanup_free_ struct space_model_status *st = NULL;
	struct probe_model *pm;
	size_t n = 0;
	int r;

	r = space_status_now(d->space, &st, &n);
	if (r < 0)
		return r;
	pm = calloc(n + 1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *name = st[i].model->name;

		pm[i].name = name;
		pm[i].size = st[i].size;
		pm[i].cached = st[i].cached;
		pm[i].pinned = space_model_pin(d->space, name) != SPACE_PIN_NONE;
		if (!mounts_model_state(d->mounts, name, &pm[i].mount, &pm[i].mount_up))
			pm[i].mount = NULL;
		pm[i].preload = cachectl_preload_state(d->cachectl, name);
	}
	*out = pm;
	*n_out = n;
	return 0;
}

static struct space_wait *probe_models_wait(void *userdata, space_scanned_fn fn, void *ctx)
{
	struct daemon *d = userdata;

	return space_after_scan(d->space, fn, ctx);
}

static void probe_models_cancel(void *userdata, struct space_wait *w)
{
	struct daemon *d = userdata;

	space_wait_cancel(d->space, w);
}

static void probe_gather(void *userdata, struct probe_source *out)
{
	struct daemon *d = userdata;

	out->fill = fill_get_stats(d->fill);
	out->ondemand = od_stats(d);
	out->http = d->cfg.origin_url ? origin_http_get_stats(d->origin) : NULL;
	out->request_timeout_ms = d->cfg.request_timeout_ms;
	out->bound = d->od != NULL || d->ublk != NULL;
	out->extra_ready = probe_extra_ready;
	out->extra_metrics = probe_extra_metrics;
	out->extra = d;
	out->space = d->space ? space_get_report(d->space) : NULL;
	if (d->space) {
		out->list_models = probe_list_models;
		out->models_wait = probe_models_wait;
		out->models_cancel = probe_models_cancel;
		out->models_userdata = d;
	}
	out->ublk = d->ublk ? ublk_get_stats(d->ublk) : NULL;
}

/* Managed mounts in ublk mode: a model's devices are made before its mount. */
static int ublk_mount_attach(void *userdata, const char *model, mounts_attach_done_fn done,
			     void *ctx)
{
	return ublk_attach_model(userdata, model, done, ctx);
}

static void ublk_mount_cancel(void *userdata, const char *model, void *ctx)
{
	ublk_attach_cancel(userdata, model, ctx);
}

static void ublk_mount_detach(void *userdata, const char *model)
{
	ublk_detach_model(userdata, model);
}

static const struct mounts_blockdev_ops ublk_mount_ops = {
	.attach = ublk_mount_attach,
	.cancel = ublk_mount_cancel,
	.detach = ublk_mount_detach,
};

/* Which front end serves: on-demand binds /dev/cachefiles here (before any thread: the device
 * holder is forked); ublk starts later, with the fill core. auto tries on-demand first: only
 * binding tells whether the kernel has it (EINVAL: built without it; ENOENT: no cachefiles). */
static int choose_frontend(struct daemon *d, const char *device, const char *ublk_control,
			   bool *use_ublk)
{
	int r;

	*use_ublk = false;
	switch (d->cfg.frontend) {
	case CONFIG_FRONTEND_UBLK:
		*use_ublk = true;
		log_info("front end: ublk ([daemon] frontend = ublk)");
		return acquire_ublk_holder(d, ublk_control);
	case CONFIG_FRONTEND_ONDEMAND:
		r = acquire_device(d, device);
		if (r >= 0)
			log_info("front end: cachefiles on-demand ([daemon] frontend = ondemand)");
		return r;
	case CONFIG_FRONTEND_AUTO:
		break;
	}
	r = acquire_device(d, device);
	if (r >= 0) {
		log_info("front end: cachefiles on-demand (frontend = auto: the kernel has it)");
		return 0;
	}
	/* Only "the kernel has no on-demand mode" falls back; a refused cache directory or a
	 * device held by another cache daemon would fail in ublk mode too, or needs the operator.
	 */
	if (r != -EINVAL && r != -ENOENT)
		return r;
	if (ublk_probe(ublk_control) < 0) {
		log_error("frontend = auto: neither cachefiles on-demand mode nor ublk (%s) is "
			  "available: modprobe ublk_drv (then frontend = auto or ublk), or see "
			  "blobcache-kcheck",
			  ublk_control);
		return r; /* the on-demand cause: its exit status */
	}
	*use_ublk = true;
	log_notice("front end: ublk (frontend = auto: this kernel has no cachefiles on-demand "
		   "mode; %s is there)",
		   ublk_control);
	return acquire_ublk_holder(d, ublk_control);
}

/* EROFS has domain_id= since Linux 6.1; on-demand mode itself since 5.19. Without it the
 * daemon's mounts would fail with EINVAL: they keep a volume per model instead. */
static void check_domain_support(struct config *cfg)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (!config_domain(cfg) || uname(&u) < 0 ||
	    sscanf(u.release, "%u.%u", &major, &minor) != 2 || major > 6 ||
	    (major == 6 && minor >= 1))
		return;
	log_notice("[cache] domain = %s: this kernel (%s) has no EROFS domain_id (Linux 6.1+); "
		   "the daemon's mounts use a cache volume per model, and models share no cache "
		   "files",
		   cfg->domain, u.release);
	free(cfg->domain);
	cfg->domain = strdup("off");
}

static int run(struct daemon *d, const char *device, const char *ublk_control)
{
	struct fill_options fopts = {
		.chunk_size = d->cfg.chunk_size,
		.request_timeout_ms = d->cfg.request_timeout_ms,
		.max_inflight = d->cfg.inflight,
		.readahead_bytes = d->cfg.readahead,
		.threads = d->cfg.verify_threads,
	};
	struct stat st;
	bool use_ublk = false;
	int r;

	/* An NFS origin is mounted by the daemon (mounts.c): its mount point may be new. */
	if (d->cfg.origin_nfs) {
		r = mkdir_parents(d->cfg.origin_path);
		if (r < 0)
			return log_error_errno(r, "cannot create the NFS origin's mount point %s",
					       d->cfg.origin_path);
	}
	/* Only a file origin can be checked before start: an HTTP server may come later. */
	if (d->cfg.origin_path && (stat(d->cfg.origin_path, &st) < 0 || !S_ISDIR(st.st_mode)))
		return log_error_errno(
			errno ? errno : ENOTDIR,
			"origin directory %s is missing (is the share mounted?); set "
			"[origin] path",
			d->cfg.origin_path);
	r = loop_new(&d->loop);
	if (r < 0)
		return log_error_errno(r, "cannot create the event loop");
	r = setup_signals(d);
	if (r < 0)
		return log_error_errno(r, "cannot set up signal handling");
	r = models_new(d->cfg.catalogue_dir, d->cfg.state_dir, &d->models);
	if (r < 0)
		return log_error_errno(r,
				       "cannot load the catalogue from %s (set [daemon] catalogue)",
				       d->cfg.catalogue_dir);
	r = mkdir_parents(d->cfg.run_dir);
	if (r < 0)
		log_warn_errno(r, "cannot create %s: no status file, no device holder",
			       d->cfg.run_dir);
	r = check_not_root_fs(&d->cfg);
	if (r < 0) {
		d->exit_status = EXIT_NO_RESTART; /* the operator must choose */
		return r;
	}
	sdn_status("binding the cache %s", d->cfg.cache_dir);
	/* Before any thread starts: the device holder is forked from here. */
	r = choose_frontend(d, device, ublk_control, &use_ublk);
	if (r < 0) {
		/* No on-demand support (EINVAL), cache dir on a filesystem cachefiles refuses
		 * (EOPNOTSUPP, also tmpfs), device held by another cache daemon (EBUSY): a
		 * restart would fail the same way. A missing directory or module may come. */
		if (r == -EINVAL || r == -EOPNOTSUPP || r == -EBUSY)
			d->exit_status = EXIT_NO_RESTART;
		return r;
	}
	if (!use_ublk)
		check_domain_support(&d->cfg);
	/* Also before any thread: capabilities are per thread. */
	if (geteuid() == 0) {
		r = caps_drop_to_serving();
		if (r < 0)
			return r;
	}
	if (d->cfg.origin_url) {
		struct origin_http_options hopts = {
			.url = d->cfg.origin_url,
			.token_file = d->cfg.token_file,
			.basic_auth_file = d->cfg.basic_auth_file,
			.ca_file = d->cfg.ca_file,
			.ca_path = d->cfg.ca_path,
			.tls_verify = d->cfg.tls_verify,
			.proxy = d->cfg.proxy,
			.no_proxy = d->cfg.no_proxy,
			.max_connections = d->cfg.max_connections,
			.retries = d->cfg.retries,
			.request_timeout_ms = d->cfg.request_timeout_ms,
		};
		r = origin_http_new(d->loop, &hopts, &d->origin);
		if (r < 0)
			return log_error_errno(r, "cannot start the HTTP origin %s",
					       d->cfg.origin_url);
	} else {
		r = origin_file_new(d->loop, d->cfg.origin_path, d->cfg.workers, &d->origin);
		if (r < 0)
			return log_error_errno(r, "cannot start the file origin");
		if (d->cfg.origin_nfs) /* reads wait for a lost mount, within their deadline */
			origin_file_set_mount(d->origin, 0x6969 /* NFS_SUPER_MAGIC */,
					      d->cfg.request_timeout_ms);
	}
	/* Verified metadata blobs are kept so that cached models mount while the origin is away;
	 * without the directory everything still works, mounts just need the origin. */
	if (asprintf(&d->meta_dir, "%s/meta", d->cfg.state_dir) < 0)
		return -ENOMEM;
	r = mkdir_parents(d->meta_dir);
	if (r < 0)
		log_warn_errno(r, "cannot create %s: cached models will need the origin to mount",
			       d->meta_dir);
	else
		fopts.meta_dir = d->meta_dir;
	if (d->cfg.origin_catalogue) {
		r = catsync_start(d->loop, d->origin, d->cfg.catalogue_dir, d->cfg.state_dir,
				  d->cfg.catalogue_refresh_ms, &d->catsync);
		if (r < 0)
			return r; /* logged */
	}
	r = fill_new(d->loop, d->origin, &fopts, &d->fill);
	if (r < 0)
		return log_error_errno(r, "cannot start the fill core");
	fill_set_locator(d->fill, locate_blob, d->models);
	if (use_ublk) {
		struct ublk_options uopts = {
			.control = ublk_control,
			.cache_dir = d->cfg.cache_dir,
			.run_dir = d->cfg.run_dir,
			.recovery = d->cfg.restart_grace_ms > 0,
		};
		r = ublk_start(d->loop, d->fill, d->models, &uopts, &d->ublk);
		if (r < 0) {
			d->exit_status = r == -ENOENT ? 0 : EXIT_NO_RESTART;
			return r;
		}
	} else {
		r = ondemand_start(d->loop, TAKE_FD(d->devfd), d->restored, &d->cfg, d->fill,
				   d->models, &d->od);
		if (r < 0)
			return r;
	}
	/* Drop the kept versions of re-published models that nothing mounts any more; the
	 * front ends are set up, so their uses are known. */
	models_prune_versions(d->models);
	r = space_new(d->loop, &d->cfg, d->models, d->fill, &d->space);
	if (r < 0)
		return r;
	r = cachevol_start(d->loop, d->cfg.cache_dir, d->od ? d->cfg.cache_tag : NULL,
			   fill_get_stats(d->fill), on_cache_dead, d, &d->cachevol);
	if (r < 0)
		return r; /* logged */
	/* Culling goes through the kernel's `cull` in on-demand mode; in ublk mode the front end
	 * lists and removes its own cache files (and their chunk maps). */
	if (d->od) {
		space_set_kernel(d->space, &ondemand_space_ops, d->od);
		ondemand_set_space(d->od, d->space);
	} else {
		ublk_set_space(d->ublk, d->space);
		space_set_kernel(d->space, &ublk_space_ops, d->ublk);
	}
	if (asprintf(&d->status_path, "%s/status", d->cfg.run_dir) < 0)
		return -ENOMEM;
	if (strcmp(d->cfg.probe_listen, "off") != 0) {
		r = probe_start(d->loop, d->cfg.probe_listen, probe_gather, d, &d->probe);
		if (r < 0)
			return r; /* an orchestrator relying on the probe must not see a silent gap
				   */
	}
	{
		_cleanup_free_ char *sock = NULL;
		if (asprintf(&sock, "%s/control.sock", d->cfg.run_dir) < 0)
			return -ENOMEM;
		r = control_start(d->loop, sock, &d->control);
		if (r < 0)
			return r; /* logged */
		r = cachectl_start(d->loop, &d->cfg, d->models, d->fill, d->space, d->control,
				   &d->cachectl);
		if (r < 0)
			return r; /* logged */
	}
	/* Mounts last: a model's mount(2) waits for the OPEN that the bound device delivers. */
	r = mounts_new(d->loop, &d->cfg, &d->mounts);
	if (r < 0)
		return r; /* logged */
	if (d->ublk)
		mounts_set_blockdev(d->mounts, &ublk_mount_ops, d->ublk);
	/* ublk: a mount in place is kept if it is of the model's devices (served again), else
	 * replaced; on-demand: kept if the cache was resumed. */
	r = mounts_start(d->mounts, d->control, !d->ublk && !ondemand_resumed(d->od));
	if (r < 0)
		return r;
	r = cachectl_start_preloads(d->cachectl, d->mounts);
	if (r < 0)
		return r;
	r = linkwatch_start(d->loop, on_link_change, d, &d->links);
	if (r < 0)
		log_warn_errno(r, "cannot watch network links: mounts are re-checked every second "
				  "only");
	r = loop_add_periodic(d->loop, STATUS_INTERVAL_MS, on_status_timer, d);
	if (r < 0)
		return log_error_errno(r, "cannot start the status timer");
	write_status(d);
	r = sdn_ready(d->loop, d->cfg.origin_url ? d->cfg.origin_url : d->cfg.origin_path);
	if (r < 0)
		return r;
	log_info("ready: origin %s, catalogue %s, chunk %llu KiB, %u workers, timeout %llu ms",
		 d->cfg.origin_url ? d->cfg.origin_url : d->cfg.origin_path, d->cfg.catalogue_dir,
		 (unsigned long long)(d->cfg.chunk_size >> 10), d->cfg.workers,
		 (unsigned long long)d->cfg.request_timeout_ms);
	r = loop_run(d->loop);
	sdn_stopping("stopping");
	write_status(d);
	return r;
}

static void teardown(struct daemon *d)
{
	control_stop(d->control);
	cachectl_free(d->cachectl);
	probe_stop(d->probe);
	catsync_free(d->catsync);
	linkwatch_stop(d->links);
	mounts_free(d->mounts);
	/* A cache scan in flight reads the front end's directory: it ends before the front end. */
	space_stop(d->space);
	if (d->ublk && d->cfg.restart_grace_ms) {
		/* The devices are made for recovery: requests in hand stay unanswered (the kernel
		 * sends them again to the next daemon); answering them would give readers EIO on
		 * every restart. The process exit closes the queues. */
		log_info("stopping; the ublk devices wait for the next daemon (restart_grace %llu "
			 "ms)",
			 (unsigned long long)d->cfg.restart_grace_ms);
	} else if (d->od && (d->holder_conn >= 0 || d->fdstored)) {
		/* The device holder keeps the cache: requests in hand stay unanswered, and the next
		 * daemon's `restore` has the kernel send them again. Failing them here would give
		 * readers EIO on every restart. The process exit closes the object fds. */
		log_info("stopping; requests in flight are left to the next daemon (%s)",
			 d->fdstored ? "systemd's fd store keeps the cache"
				     : "the device holder keeps the cache for restart_grace");
	} else {
		/* Fill first: it fails open requests, whose completions still need the front end.
		 */
		fill_free(d->fill);
		ondemand_stop(d->od);
		ublk_stop(d->ublk);
		origin_free(d->origin);
	}
	cachevol_free(d->cachevol);
	space_free(d->space);
	models_free(d->models);
	if (d->sigfd >= 0) {
		loop_remove_fd(d->loop, d->sigfd);
		close(d->sigfd);
	}
	loop_free(d->loop);
	free(d->status_path);
	free(d->meta_dir);
	if (d->devfd >= 0)
		close(d->devfd);
	/* holder_conn is left to the exit: its close tells the holder we are gone. */
	config_free(&d->cfg);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "device", required_argument, NULL, 'D' },
		{ "ublk-control", required_argument, NULL, 'U' },
		{ "dump-config", no_argument, NULL, 'P' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const char *config_path = CONFIG_DEFAULT_PATH, *device = "/dev/cachefiles";
	const char *ublk_control = UBLK_CONTROL_DEVICE;
	bool explicit_config = false, dump = false, check = false, debug = false;
	struct daemon d = { .sigfd = -1, .devfd = -EBADF, .holder_conn = -EBADF };
	int c, r;

	while ((c = getopt_long(argc, argv, "c:dhV", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			config_path = optarg;
			explicit_config = true;
			break;
		case 'D':
			device = optarg;
			break;
		case 'U':
			ublk_control = optarg;
			break;
		case 'P':
			dump = true;
			break;
		case 'C':
			check = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("blobcached %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "blobcached: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (getenv("JOURNAL_STREAM"))
		log_set_syslog_prefix(true);

	raise_fd_limit();
	r = load_config(&d.cfg, config_path, explicit_config);
	if (r < 0) {
		config_free(&d.cfg);
		return EXIT_NO_RESTART;
	}
	if (dump) {
		config_print(&d.cfg, stdout);
		config_free(&d.cfg);
		return 0;
	}
	if (check) {
		printf("%s: configuration is valid\n", config_path);
		config_free(&d.cfg);
		return 0;
	}
	log_set_level(debug ? LOG_DEBUG : d.cfg.log_level);

	r = run(&d, device, ublk_control);
	teardown(&d);
	if (r < 0)
		return d.exit_status ? d.exit_status : 1;
	return 0;
}
