// SPDX-License-Identifier: GPL-2.0-or-later
/* The space manager in its loop: every walk of the cache, the first one at start included, runs
 * in the scan thread, never in the loop thread, its list is applied and the decisions run on it
 * (here: the files of no catalogue model are retired); and a stop with a walk in flight waits
 * for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "configfile.h"
#include "core/loop.h"
#include "core/models.h"
#include "core/space.h"

struct fake {
	pid_t loop_tid;
	atomic_int lists, lists_in_loop, culls, culls_off_loop;
	int sleep_ms;	    /* in each list_files */
	atomic_bool listed; /* the last list_files returned */
	struct space *sp;
	struct loop *loop;
	int ticks;
	bool timed_out;
	void *loop_done; /* the waiter whose call ends the loop */
};

static void fake_list(void *userdata, space_file_fn fn, void *ctx)
{
	struct fake *f = userdata;

	atomic_store(&f->listed, false);
	f->lists++;
	if (gettid() == f->loop_tid)
		f->lists_in_loop++;
	if (f->sleep_ms)
		usleep((useconds_t)f->sleep_ms * 1000);
	atomic_store(&f->listed, true);
}

static int fake_cull(void *userdata, const char *dir, const char *name)
{
	struct fake *f = userdata;
	char path[PATH_MAX];

	f->culls++;
	if (gettid() != f->loop_tid)
		f->culls_off_loop++;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return unlink(path) < 0 ? -errno : 0;
}

static const struct space_kernel_ops fake_ops = {
	.cull = fake_cull,
	.list_files = fake_list,
};

struct env {
	char root[64];
	struct config cfg;
	struct models *models;
	struct loop *loop;
};

static void mkdirf(const char *root, const char *sub)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	assert_int_equal(mkdir(path, 0700), 0);
}

static void env_setup(struct env *e, unsigned n_files)
{
	char path[PATH_MAX], buf[4096];

	snprintf(e->root, sizeof(e->root), "/tmp/test-space-loop.XXXXXX");
	assert_non_null(mkdtemp(e->root));
	mkdirf(e->root, "c");
	mkdirf(e->root, "c/cache");
	mkdirf(e->root, "c/cache/Ierofs,m");
	mkdirf(e->root, "c/cache/Ierofs,m/@4a");
	mkdirf(e->root, "s");
	mkdirf(e->root, "cat");
	memset(buf, 'x', sizeof(buf));
	for (unsigned i = 0; i < n_files; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/c/cache/Ierofs,m/@4a/Dkey%u", e->root, i);
		fd = open(path, O_CREAT | O_WRONLY, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
		close(fd);
	}
	assert_int_equal(config_init_defaults(&e->cfg), 0);
	free(e->cfg.cache_dir);
	free(e->cfg.state_dir);
	free(e->cfg.catalogue_dir);
	assert_true(asprintf(&e->cfg.cache_dir, "%s/c", e->root) > 0);
	assert_true(asprintf(&e->cfg.state_dir, "%s/s", e->root) > 0);
	assert_true(asprintf(&e->cfg.catalogue_dir, "%s/cat", e->root) > 0);
	e->cfg.cull_interval_ms = 50;
	assert_int_equal(models_new(e->cfg.catalogue_dir, e->cfg.state_dir, &e->models), 0);
	assert_int_equal(loop_new(&e->loop), 0);
}

static void env_teardown(struct env *e)
{
	char cmd[128];

	models_free(e->models);
	loop_free(e->loop);
	config_free(&e->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->root);
	assert_int_equal(system(cmd), 0);
}

static void until_retired(struct loop *loop, void *userdata)
{
	struct fake *f = userdata;
	const struct space_report *r = space_get_report(f->sp);

	if (r->files == 0 && r->retired_files == 3)
		loop_quit(loop, 0);
	else if (++f->ticks > 200) /* 4 s at 20 ms */
		f->timed_out = true, loop_quit(loop, 0);
}

static void until_scanned(struct loop *loop, void *userdata)
{
	struct fake *f = userdata;

	if (space_scanned(f->sp))
		loop_quit(loop, 0);
	else if (++f->ticks > 200) /* 4 s at 20 ms */
		f->timed_out = true, loop_quit(loop, 0);
}

/* Run the loop until the first walk (started by space_set_kernel) is applied. */
static void wait_first_scan(struct env *e, struct fake *f)
{
	int timer = loop_add_periodic(e->loop, 20, until_scanned, f);

	assert_true(timer >= 0);
	assert_int_equal(loop_run(e->loop), 0);
	assert_false(f->timed_out);
	loop_remove_fd(e->loop, timer);
	f->ticks = 0;
}

static void the_walk_runs_off_the_loop_and_its_list_is_acted_on(void **state)
{
	struct fake f = { .loop_tid = gettid() };
	struct env e;
	char path[PATH_MAX];

	env_setup(&e, 3);
	assert_int_equal(space_new(e.loop, &e.cfg, e.models, NULL, &f.sp), 0);
	space_set_kernel(f.sp, &fake_ops, &f);
	/* the first walk, at start, is not done in place: the loop applies it once it has run */
	assert_false(space_scanned(f.sp));
	assert_int_equal(space_get_report(f.sp)->files, 0);
	wait_first_scan(&e, &f);
	assert_int_equal(f.lists_in_loop, 0);
	assert_true(f.lists >= 1);
	assert_true(loop_add_periodic(e.loop, 20, until_retired, &f) >= 0);
	assert_int_equal(loop_run(e.loop), 0);
	assert_false(f.timed_out);
	/* every walk ran in the scan thread, the first one included; the culls (decisions) in
	 * the loop */
	assert_true(f.lists >= 1);
	assert_int_equal(f.lists_in_loop, 0);
	assert_int_equal(f.culls, 3);
	assert_int_equal(f.culls_off_loop, 0);
	snprintf(path, sizeof(path), "%s/c/cache/Ierofs,m/@4a/Dkey0", e.root);
	assert_int_equal(access(path, F_OK), -1);
	space_free(f.sp);
	env_teardown(&e);
}

static void quit_after_a_while(struct loop *loop, void *userdata)
{
	struct fake *f = userdata;

	if (++f->ticks == 10) /* 200 ms: the first walk (50 ms) is in its 2 s sleep */
		loop_quit(loop, 0);
}

static void a_stop_waits_for_the_walk_in_flight_and_walks_never_pile_up(void **state)
{
	struct fake f = { .loop_tid = gettid(), .sleep_ms = 2000 };
	struct env e;

	env_setup(&e, 1);
	assert_int_equal(space_new(e.loop, &e.cfg, e.models, NULL, &f.sp), 0);
	/* the first walk (at start) is the one in flight */
	space_set_kernel(f.sp, &fake_ops, &f);
	assert_true(loop_add_periodic(e.loop, 20, quit_after_a_while, &f) >= 0);
	assert_int_equal(loop_run(e.loop), 0);
	/* three ticks went by during the walk: skipped, not queued */
	assert_int_equal(f.lists, 1);
	assert_false(atomic_load(&f.listed));
	space_stop(f.sp);
	assert_true(atomic_load(&f.listed));
	space_free(f.sp);
	assert_int_equal(f.lists, 1);
	env_teardown(&e);
}

struct waiter {
	struct fake *f;
	int lists_at_call; /* walks begun when it was called; -1: not called */
};

static void on_scanned(struct space *sp, void *ctx)
{
	struct waiter *w = ctx;

	w->lists_at_call = w->f->lists;
	if (w == (struct waiter *)w->f->loop_done)
		loop_quit(w->f->loop, 0);
}

static void ask_during_the_walk(struct loop *loop, void *userdata)
{
	struct fake *f = userdata;

	if (++f->ticks > 300) /* 6 s */
		f->timed_out = true, loop_quit(loop, 0);
}

/* status and evict wait for a walk that starts after they ask: with one in flight (it may have
 * passed their files), the next one; a cancelled wait is never called. */
static void a_wait_is_answered_after_a_walk_that_starts_after_it(void **state)
{
	struct fake f = { .loop_tid = gettid() };
	struct waiter first = { .f = &f, .lists_at_call = -1 };
	struct waiter mid = first, gone = first;
	struct space_wait *w;
	struct env e;

	env_setup(&e, 1);
	e.cfg.cull_interval_ms = 3600000; /* no periodic walk: only those asked for */
	assert_int_equal(space_new(e.loop, &e.cfg, e.models, NULL, &f.sp), 0);
	space_set_kernel(f.sp, &fake_ops, &f);
	wait_first_scan(&e, &f);
	f.lists = 0;
	f.loop = e.loop;
	f.sleep_ms = 300;
	f.loop_done = &mid;
	/* the first wait starts a walk; a second, while it runs, waits for the next one */
	assert_non_null(space_after_scan(f.sp, on_scanned, &first));
	assert_int_equal(f.lists_in_loop, 0); /* not walked in place */
	assert_non_null(space_after_scan(f.sp, on_scanned, &mid));
	w = space_after_scan(f.sp, on_scanned, &gone);
	assert_non_null(w);
	space_wait_cancel(f.sp, w);
	assert_true(loop_add_periodic(e.loop, 20, ask_during_the_walk, &f) >= 0);
	assert_int_equal(loop_run(e.loop), 0);
	assert_false(f.timed_out);
	assert_int_equal(first.lists_at_call, 1); /* the first wait: after the first walk */
	assert_int_equal(gone.lists_at_call, -1); /* cancelled */
	assert_int_equal(mid.lists_at_call, 2);	  /* the second: after the walk begun after it */
	space_free(f.sp);
	env_teardown(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_walk_runs_off_the_loop_and_its_list_is_acted_on),
		cmocka_unit_test(a_stop_waits_for_the_walk_in_flight_and_walks_never_pile_up),
		cmocka_unit_test(a_wait_is_answered_after_a_walk_that_starts_after_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
