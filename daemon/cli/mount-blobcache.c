// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mount.blobcache / umount.blobcache: mount(8)'s and umount(8)'s external helper for
 * `mount -t blobcache MODEL DIR` and fstab lines of type blobcache (see mount.blobcache(8)).
 *
 * The daemon mounts the model (the control socket's `mount MODEL DIR` verb, as
 * `blobcachectl mount` does), with whichever front end it uses, and keeps it mounted. So that
 * `umount DIR` unmounts it for good instead of the daemon mounting it again, the helper records
 * helper=blobcache for the mount in /run/mount/utab: umount(8) then runs umount.blobcache,
 * which asks the daemon (`umount MODEL`). One program, two names (argv[0]).
 */
#include <errno.h>
#include <libgen.h>
#include <libmount.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>

#include "cli/ctlclient.h"
#include "cli/mountopts.h"
#include "macros.h"
#include "names.h"

#define MOUNTINFO	   "/proc/self/mountinfo"
#define RETRY_INTERVAL_MS  200
#define MOUNTED_TIMEOUT_MS 60000 /* a mount the daemon already had: until it is in place */

static const char *prog = "mount.blobcache";
static bool verbose;

static _printf_(1, 2) void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define note(...)                                                                                  \
	do {                                                                                       \
		if (verbose)                                                                       \
			say(__VA_ARGS__);                                                          \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static bool daemon_absent(int r)
{
	return r == -ENOENT || r == -ECONNREFUSED;
}

/* ---- the daemon's answers ---- */

struct status_scan {
	const char *model;
	bool found;
};

static void status_line(const char *line, void *userdata)
{
	struct status_scan *s = userdata;
	size_t n = strlen(s->model);

	if (strncmp(line, "model name=", 11) == 0 && strncmp(line + 11, s->model, n) == 0 &&
	    line[11 + n] == ' ')
		s->found = true;
}

/* One line of `mounts`: "model NAME PATH STATE remounts=N ...". */
struct mounts_scan {
	const char *model;  /* look up by model name ... */
	const char *target; /* ... or by mount point */
	char name[MODEL_NAME_MAX + 1];
	char path[PATH_MAX];
	char state[64];
	bool config;
	bool found;
};

static void mounts_line(const char *line, void *userdata)
{
	struct mounts_scan *s = userdata;
	char kind[16], name[MODEL_NAME_MAX + 1], path[PATH_MAX], state[64];

	if (s->found || sscanf(line, "%15s %64s %4095s %63s", kind, name, path, state) != 4 ||
	    !streq(kind, "model"))
		return;
	if ((s->model && !streq(name, s->model)) || (s->target && !streq(path, s->target)))
		return;
	s->found = true;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->state, sizeof(s->state), "%s", state);
	s->config = strstr(line, " (config)") != NULL;
}

/*
 * ctl_call(), waiting for the daemon until deadline_ms (CLOCK_MONOTONIC) while its socket is
 * absent or refuses connections. `reset` is called before each attempt.
 */
static int call_waiting(const struct mount_opts *o, int argc, char **argv, ctl_line_fn fn,
			void *userdata, void (*reset)(void *), uint64_t deadline_ms, char *err,
			size_t err_len)
{
	bool told = false;
	int r;

	for (;;) {
		if (reset)
			reset(userdata);
		r = ctl_call(o->run_dir, argc, argv, fn, userdata, err, err_len);
		if (!daemon_absent(r) || now_ms() >= deadline_ms)
			return r;
		if (!told) {
			note("waiting up to %llu s for blobcached (%s/control.sock)",
			     (unsigned long long)((deadline_ms - now_ms() + 999) / 1000),
			     o->run_dir);
			told = true;
		}
		sleep_ms(RETRY_INTERVAL_MS);
	}
}

static void reset_status(void *userdata)
{
	((struct status_scan *)userdata)->found = false;
}

static void reset_mounts(void *userdata)
{
	struct mounts_scan *s = userdata;

	s->found = false;
	s->config = false;
}

/* ---- /run/mount/utab: helper=blobcache, so that umount(8) runs umount.blobcache ---- */

/* The topmost mount at target (the one umount(8) would act on), or NULL; unref the table. */
static struct libmnt_fs *top_mount(const char *target, struct libmnt_table **tb)
{
	*tb = mnt_new_table_from_file(MOUNTINFO);
	return *tb ? mnt_table_find_target(*tb, target, MNT_ITER_BACKWARD) : NULL;
}

static int utab_update(const char *target, bool add)
{
	struct libmnt_table *tb = NULL;
	struct libmnt_fs *top, *fs = NULL;
	struct libmnt_update *upd = mnt_new_update();
	int r = -ENOMEM;

	if (!upd)
		return -ENOMEM;
	/* Remove first: a second mount of the same path must not leave two entries. */
	r = mnt_update_set_fs(upd, 0, target, NULL);
	if (r == 0)
		r = mnt_update_table(upd, NULL);
	if (r < 0 || !add)
		goto out;
	top = top_mount(target, &tb);
	if (!top) {
		r = -ENOENT;
		goto out;
	}
	fs = mnt_new_fs();
	if (!fs || mnt_fs_set_source(fs, mnt_fs_get_source(top)) < 0 ||
	    mnt_fs_set_target(fs, target) < 0 || mnt_fs_set_root(fs, mnt_fs_get_root(top)) < 0 ||
	    mnt_fs_set_fstype(fs, mnt_fs_get_fstype(top)) < 0 ||
	    mnt_fs_set_options(fs, "helper=blobcache") < 0) {
		r = -ENOMEM;
		goto out;
	}
	mnt_free_update(upd);
	upd = mnt_new_update();
	if (!upd) {
		r = -ENOMEM;
		goto out;
	}
	r = mnt_update_set_fs(upd, 0, NULL, fs);
	if (r == 0)
		r = mnt_update_table(upd, NULL);
out:
	mnt_free_update(upd);
	mnt_unref_fs(fs);
	mnt_unref_table(tb);
	return r > 0 ? 0 : r; /* 1: nothing to do */
}

/* ---- mount ---- */

static int do_mount(const struct mount_args *a)
{
	struct mount_opts o;
	struct status_scan st = { .model = a->source };
	struct mounts_scan ms = { .model = a->source };
	char err[1024] = "", target[PATH_MAX];
	char *status_req[] = { (char *)"status" };
	char *mounts_req[] = { (char *)"mounts" };
	char *mount_req[4];
	uint64_t deadline;
	int r, n_req = 3;

	if (mount_opts_parse(a->options, a->sloppy, &o, err, sizeof(err)) < 0) {
		say("%s", err);
		return MOUNT_EX_USAGE;
	}
	if (!name_is_valid_model(a->source, strlen(a->source))) {
		say("'%s' is not a model name ([A-Za-z0-9._-], 1 to 64 bytes, starting with a "
		    "letter or digit): mount -t blobcache MODEL DIR",
		    a->source);
		return MOUNT_EX_USAGE;
	}
	if (!realpath(a->target, target)) {
		say("mount point %s: %s", a->target, strerror(errno));
		return MOUNT_EX_FAIL;
	}
	if (strpbrk(target, " \t\n")) {
		say("mount point '%s': paths with blanks are not supported", target);
		return MOUNT_EX_USAGE;
	}
	if (a->fake) {
		note("-f: not mounting %s at %s", a->source, target);
		return MOUNT_EX_SUCCESS;
	}

	/* The daemon up (waiting for it within timeout=), and the model in its catalogue. */
	deadline = now_ms() + o.timeout_ms;
	r = call_waiting(&o, 1, status_req, status_line, &st, reset_status, deadline, err,
			 sizeof(err));
	if (daemon_absent(r)) {
		char waited[64] = "";
		if (o.timeout_ms)
			snprintf(waited, sizeof(waited), " after waiting %llu ms (timeout=)",
				 (unsigned long long)o.timeout_ms);
		say("cannot mount %s: blobcached is not running (no %s/control.sock%s). Start it "
		    "(systemctl start blobcached); at boot, give the fstab line "
		    "x-systemd.requires=blobcached.service and -o timeout=SEC to wait for it",
		    a->source, o.run_dir, waited);
		return MOUNT_EX_FAIL;
	}
	if (r < 0) {
		say("cannot mount %s: blobcached: %s", a->source, err);
		return MOUNT_EX_FAIL;
	}
	if (!st.found) {
		say("cannot mount %s: no model '%s' in blobcached's catalogue ('blobcachectl "
		    "status' lists the models). Publish it (blobcachectl publish --catalogue DIR "
		    "%s SRC ORIGIN), or copy ORIGIN/models/%s.model into the catalogue directory "
		    "([daemon] catalogue)",
		    a->source, a->source, a->source, a->source);
		return MOUNT_EX_FAIL;
	}

	mount_req[0] = (char *)"mount";
	mount_req[1] = (char *)a->source;
	mount_req[2] = target;
	if (o.erofs[0])
		mount_req[n_req++] = o.erofs;
	note("asking blobcached to mount %s at %s%s%s", a->source, target, o.erofs[0] ? " -o " : "",
	     o.erofs);
	r = ctl_call(o.run_dir, n_req, mount_req, NULL, NULL, err, sizeof(err));
	if (r < 0) {
		say("cannot mount %s at %s: %s", a->source, target, err);
		return MOUNT_EX_FAIL;
	}
	/* A model the daemon had already (from its state or configuration) may still be on its
	 * way: wait until it is in place. */
	deadline = now_ms() + MAX(o.timeout_ms, MOUNTED_TIMEOUT_MS);
	for (;;) {
		r = call_waiting(&o, 1, mounts_req, mounts_line, &ms, reset_mounts, 0, err,
				 sizeof(err));
		if (r < 0) {
			say("cannot mount %s at %s: blobcached: %s", a->source, target, err);
			return MOUNT_EX_FAIL;
		}
		if (!ms.found || !streq(ms.path, target)) {
			say("cannot mount %s at %s: blobcached does not list it there%s%s",
			    a->source, target, ms.found ? " but at " : "", ms.found ? ms.path : "");
			return MOUNT_EX_FAIL;
		}
		if (strncmp(ms.state, "mounted", 7) == 0)
			break;
		if (now_ms() >= deadline) {
			say("cannot mount %s at %s: still %s after %llu s ('blobcachectl mounts' "
			    "tells why)",
			    a->source, target, ms.state,
			    (unsigned long long)(MAX(o.timeout_ms, MOUNTED_TIMEOUT_MS) / 1000));
			return MOUNT_EX_FAIL;
		}
		sleep_ms(RETRY_INTERVAL_MS);
	}
	if (!a->no_mtab) {
		r = utab_update(target, true);
		if (r < 0)
			say("warning: cannot record helper=blobcache for %s in /run/mount/utab "
			    "(%s): "
			    "unmount it with 'blobcachectl umount %s' (a plain umount is undone by "
			    "the daemon)",
			    target, strerror(-r), a->source);
	}
	note("%s mounted at %s", a->source, target);
	return MOUNT_EX_SUCCESS;
}

/* ---- umount ---- */

/* Without the daemon: unmount what is there; the anchor (the mount point bound onto itself,
 * see blobcached(8)) too. */
static int umount_directly(const char *target, const struct mount_args *a)
{
	struct libmnt_table *tb = NULL;
	struct libmnt_fs *top;
	int flags = (a->lazy ? MNT_DETACH : 0) | (a->force ? MNT_FORCE : 0);

	if (umount2(target, flags) < 0) {
		int e = errno;
		say("umount %s: %s", target, strerror(e));
		return -e;
	}
	top = top_mount(target, &tb);
	if (top && mnt_fs_get_root(top) && streq(mnt_fs_get_root(top), target))
		umount2(target, MNT_DETACH);
	mnt_unref_table(tb);
	return 0;
}

static int do_umount(const struct mount_args *a)
{
	struct mount_opts o;
	struct mounts_scan ms = { 0 };
	char err[1024] = "", target[PATH_MAX];
	char *mounts_req[] = { (char *)"mounts" };
	char *umount_req[2];
	int r;

	mount_opts_parse(NULL, false, &o, err, sizeof(err)); /* defaults */
	if (!realpath(a->target, target))
		snprintf(target, sizeof(target), "%s", a->target);
	ms.target = target;
	r = ctl_call(o.run_dir, 1, mounts_req, mounts_line, &ms, err, sizeof(err));
	if (r < 0 && !daemon_absent(r)) {
		say("umount %s: blobcached: %s", target, err);
		return MOUNT_EX_FAIL;
	}
	if (r == 0 && ms.found) {
		umount_req[0] = (char *)"umount";
		umount_req[1] = ms.name;
		note("asking blobcached to unmount %s from %s", ms.name, target);
		r = ctl_call(o.run_dir, 2, umount_req, NULL, NULL, err, sizeof(err));
		if (r < 0) {
			say("umount %s: %s", target, err);
			return MOUNT_EX_FAIL;
		}
	} else {
		/* Not the daemon's (or the daemon is down: then it mounts it again when it
		 * starts, if it is in its state_dir/mounts). */
		if (r < 0)
			note("blobcached is not running: unmounting %s directly", target);
		if (umount_directly(target, a) < 0)
			return MOUNT_EX_FAIL;
	}
	if (!a->no_mtab && (r = utab_update(target, false)) < 0)
		note("cannot remove %s from /run/mount/utab: %s", target, strerror(-r));
	return MOUNT_EX_SUCCESS;
}

static void usage(FILE *f, bool is_umount)
{
	if (is_umount)
		fputs("Usage: umount.blobcache DIR [-nlfv]\n"
		      "\n"
		      "umount(8)'s helper for models mounted with mount.blobcache: asks "
		      "blobcached\n"
		      "to unmount the model at DIR (lazily: open files stay readable until "
		      "closed).\n"
		      "Run as 'umount DIR'. See mount.blobcache(8).\n",
		      f);
	else
		fputs("Usage: mount.blobcache MODEL DIR [-sfnv] [-o OPTIONS]\n"
		      "\n"
		      "mount(8)'s helper: 'mount -t blobcache MODEL DIR' has blobcached mount\n"
		      "the model MODEL of its catalogue at DIR (read-only), and keep it mounted.\n"
		      "\n"
		      "Options (-o, comma-separated):\n"
		      "  timeout=SEC    wait this long for blobcached to answer (default 0: fail\n"
		      "                 at once); e.g. timeout=60 in fstab\n"
		      "  run_dir=DIR    the daemon's run_dir (default " CTL_DEFAULT_RUN_DIR ")\n"
		      "  domain_id=NAME, device=DIGEST   passed on to the EROFS mount (default\n"
		      "                 domain: the daemon's [cache] domain)\n"
		      "  defaults, nofail, _netdev, x-*, ro, nosuid, nodev...  accepted (fstab)\n"
		      "\n"
		      "  -s  ignore unknown options   -f  check, do not mount\n"
		      "  -n  do not write /run/mount/utab   -v  verbose\n"
		      "\n"
		      "Exit status: 0 mounted, 1 bad usage or option, 32 mount failure (daemon "
		      "not\n"
		      "running, model not in the catalogue, the daemon's mount failed).\n"
		      "See mount.blobcache(8).\n",
		      f);
}

int main(int argc, char **argv)
{
	_cleanup_free_ char *name_copy = strdup(argv[0] ? argv[0] : "mount.blobcache");
	struct mount_args a;
	char err[512];
	bool is_umount;

	if (!name_copy)
		return MOUNT_EX_SYSERR;
	is_umount = strncmp(basename(name_copy), "umount", 6) == 0;
	prog = is_umount ? "umount.blobcache" : "mount.blobcache";
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
			usage(stdout, is_umount);
			return MOUNT_EX_SUCCESS;
		}
	}
	if (mount_args_parse(argc, argv, is_umount, &a, err, sizeof(err)) < 0) {
		say("%s", err);
		usage(stderr, is_umount);
		return MOUNT_EX_USAGE;
	}
	verbose = a.verbose;
	return is_umount ? do_umount(&a) : do_mount(&a);
}
