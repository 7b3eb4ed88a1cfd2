// SPDX-License-Identifier: GPL-2.0-or-later
/* Mount management's pure parts: options, mountinfo matching, health decisions, back-off, the
 * state file; the [origin] nfs keys; the link watcher's notion of "up". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <libmount.h>
#include <linux/if.h>

#include "configfile.h"
#include "ops/linkwatch.h"
#include "ops/mountpolicy.h"
#include "test-helpers.h"

static void erofs_options_carry_the_name_and_extras(void **state)
{
	char buf[64];

	assert_int_equal(mount_erofs_options("m1", NULL, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fsid=m1");
	assert_int_equal(mount_erofs_options("m1", "domain_id=d", NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fsid=m1,domain_id=d");
	assert_int_equal(mount_erofs_options("m1", "", NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fsid=m1");
	assert_int_equal(mount_erofs_options("a-long-model-name", "domain_id=x", NULL, buf, 16),
			 -ENAMETOOLONG);
}

/* [cache] domain: added to the daemon's mounts; a domain_id= of the model's own wins. */
static void erofs_options_take_the_default_domain(void **state)
{
	char buf[96];

	(void)state;
	assert_int_equal(mount_erofs_options("m1", NULL, "blobcache", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fsid=m1,domain_id=blobcache");
	assert_int_equal(mount_erofs_options("m1", "", "blobcache", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fsid=m1,domain_id=blobcache");
	assert_int_equal(mount_erofs_options("m1", "device=abc", "blobcache", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fsid=m1,device=abc,domain_id=blobcache");
	assert_int_equal(mount_erofs_options("m1", "domain_id=mine", "blobcache", buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "fsid=m1,domain_id=mine");
	assert_int_equal(mount_erofs_options("m1", "device=abc,domain_id=mine", "blobcache", buf,
					     sizeof(buf)),
			 0);
	assert_string_equal(buf, "fsid=m1,device=abc,domain_id=mine");
	/* an option merely ending in domain_id is not one */
	assert_int_equal(mount_erofs_options("m1", "xdomain_id=z", "blobcache", buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "fsid=m1,xdomain_id=z,domain_id=blobcache");
	assert_int_equal(mount_erofs_options("m1", NULL, "blobcache", buf, 20), -ENAMETOOLONG);
}

/* A mountinfo as the kernel writes it: the anchor (a bind of /models/m, shared), the model on
 * it, a model of another name elsewhere, an NFS origin. */
static const char mountinfo[] =
	"22 1 0:21 / / rw,relatime - rootfs rootfs rw\n"
	"40 22 0:21 /models/m /models/m rw,relatime shared:7 - rootfs rootfs rw\n"
	"41 40 0:40 / /models/m ro,nosuid,nodev,relatime shared:8 - erofs none "
	"ro,fsid=m,domain_id=d\n"
	"42 22 0:41 / /models/other ro,relatime - erofs none ro,fsid=mm\n"
	"43 22 0:42 / /srv/origin rw,relatime - nfs4 127.0.0.1:/srv/export "
	"rw,vers=4.2,soft,timeo=30,retrans=2\n"
	"44 22 0:21 /plain /plain rw,relatime - rootfs rootfs rw\n";

static struct libmnt_table *fixture_table(void)
{
	char *dir = test_make_temp_dir(), *path = NULL;
	struct libmnt_table *tb;
	FILE *f;

	assert_true(asprintf(&path, "%s/mountinfo", dir) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(mountinfo, f);
	fclose(f);
	tb = mnt_new_table_from_file(path);
	assert_non_null(tb);
	test_remove_tree(dir);
	free(path);
	free(dir);
	return tb;
}

static void mountinfo_matching_needs_path_type_and_fsid(void **state)
{
	struct libmnt_table *tb = fixture_table();
	bool shared;

	assert_true(mount_table_has_erofs(tb, "/models/m", "m"));
	assert_true(mount_table_has_erofs(tb, "/models/m/", "m")); /* trailing slash */
	assert_false(mount_table_has_erofs(tb, "/models/m", "mm"));
	assert_false(mount_table_has_erofs(tb, "/models/other", "m")); /* fsid=mm, not m */
	assert_true(mount_table_has_erofs(tb, "/models/other", "mm"));
	assert_false(mount_table_has_erofs(tb, "/models", "m"));
	assert_false(mount_table_has_erofs(tb, "/plain", "m")); /* not erofs */

	assert_true(mount_table_has_fs(tb, "/srv/origin", "nfs", "127.0.0.1:/srv/export"));
	assert_true(mount_table_has_fs(tb, "/srv/origin", "nfs", NULL));
	assert_false(mount_table_has_fs(tb, "/srv/origin", "nfs", "other:/srv/export"));
	assert_false(mount_table_has_fs(tb, "/srv", "nfs", NULL));
	assert_false(mount_table_has_fs(tb, "/plain", "nfs", NULL));

	assert_true(mount_table_has_anchor(tb, "/models/m", &shared));
	assert_true(shared);
	assert_true(mount_table_has_anchor(tb, "/plain", &shared));
	assert_false(shared);
	assert_false(mount_table_has_anchor(tb, "/models/other", &shared)); /* erofs only */
	mnt_unref_table(tb);
}

static void a_single_slow_probe_never_acts(void **state)
{
	struct mount_health h = { 0 };

	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_HUNG, 3), MOUNT_ACTION_NONE);
	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_OK, 3), MOUNT_ACTION_NONE);
	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_FAILED, 3), MOUNT_ACTION_NONE);
	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_HUNG, 3), MOUNT_ACTION_NONE);
	/* an OK in between resets the count */
	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_OK, 3), MOUNT_ACTION_NONE);
	assert_int_equal(h.consecutive_failures, 0);
	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_FAILED, 3), MOUNT_ACTION_NONE);
	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_HUNG, 3), MOUNT_ACTION_NONE);
	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_FAILED, 3),
			 MOUNT_ACTION_DETACH_REMOUNT);
	assert_int_equal(h.consecutive_failures, 0); /* counted afresh for the new mount */
}

static void missing_and_stale_act_at_once(void **state)
{
	struct mount_health h = { .consecutive_failures = 1 };

	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_MISSING, 3), MOUNT_ACTION_REMOUNT);
	assert_int_equal(mount_health_update(&h, MOUNT_PROBE_STALE, 3),
			 MOUNT_ACTION_DETACH_REMOUNT);
}

static void backoff_doubles_up_to_the_cap(void **state)
{
	assert_int_equal(mount_backoff_ms(0), 0);
	assert_int_equal(mount_backoff_ms(1), 500);
	assert_int_equal(mount_backoff_ms(2), 1000);
	assert_int_equal(mount_backoff_ms(3), 2000);
	assert_int_equal(mount_backoff_ms(7), 30000); /* 32 s, capped */
	assert_int_equal(mount_backoff_ms(100), 30000);
}

static void state_file_round_trips(void **state)
{
	struct mount_spec in[] = {
		{ "m1", "/models/m1", NULL },
		{ "m2", "/models/m2", "domain_id=d" },
	};
	struct mount_spec *out = NULL;
	size_t n = 0;
	char err[128] = "";
	char *text = mount_state_format(in, 2);

	assert_non_null(text);
	assert_int_equal(mount_state_parse(text, &out, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].name, "m1");
	assert_string_equal(out[0].path, "/models/m1");
	assert_null(out[0].options);
	assert_string_equal(out[1].options, "domain_id=d");
	mount_specs_free(out, n);
	free(text);

	assert_int_equal(mount_state_parse("\n# c\n\n", &out, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	mount_specs_free(out, n);
}

static void state_file_errors_name_the_line(void **state)
{
	struct mount_spec *out = NULL;
	size_t n = 0;
	char err[128] = "";

	assert_int_equal(
		mount_state_parse("# x\n\nmodel m relative/path\n", &out, &n, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "line 3"));
	assert_non_null(strstr(err, "absolute"));
	assert_int_equal(mount_state_parse("model bad/name /x\n", &out, &n, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "model name"));
	assert_int_equal(mount_state_parse("model a /x\nmodel a /y\n", &out, &n, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(mount_state_parse("model a /x o p\n", &out, &n, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(mount_state_parse("mount a /x\n", &out, &n, err, sizeof(err)), -EINVAL);
}

static int parse_validate(const char *text, char *err, size_t len)
{
	struct config c;
	int r;

	assert_int_equal(config_init_defaults(&c), 0);
	r = config_parse_text(&c, text, "t.conf", err, len);
	if (r == 0)
		r = config_validate(&c, err, len);
	config_free(&c);
	return r;
}

static void nfs_origin_keys_are_checked(void **state)
{
	char err[512];

	assert_int_equal(
		parse_validate("[origin]\npath = /srv/o\nnfs = nas:/export\n", err, sizeof(err)),
		0);
	assert_int_equal(parse_validate("[origin]\npath = /srv/o\nnfs = nas:/e\n"
					"nfs_options = soft,timeo=10,nofsc\n",
					err, sizeof(err)),
			 0);
	assert_int_equal(
		parse_validate("[origin]\nurl = http://x/\nnfs = nas:/e\n", err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "needs path"));
	assert_int_equal(
		parse_validate("[origin]\npath = /o\nnfs = nas-export\n", err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "SERVER:/EXPORT"));
	assert_int_equal(parse_validate("[origin]\npath = /o\nnfs = n:/e\nnfs_options = hard\n",
					err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "no hard"));
	assert_int_equal(parse_validate("[origin]\npath = /o\nnfs = n:/e\nnfs_options = "
					"soft,rw\n",
					err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "no rw"));
	assert_int_equal(parse_validate("[origin]\npath = /o\nnfs = n:/e\nnfs_options = "
					"soft,rsize=65536\n",
					err, sizeof(err)),
			 0);
	assert_int_equal(parse_validate("[origin]\npath = /o\nnfs = n:/e\nnfs_options = "
					"soft,fsc\n",
					err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(
		parse_validate("[origin]\npath = /o\nnfs_options = soft\n", err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "without nfs"));
}

static void link_is_up_when_up_and_running(void **state)
{
	assert_true(linkwatch_flags_up(IFF_UP | IFF_RUNNING | IFF_LOWER_UP));
	assert_false(linkwatch_flags_up(IFF_UP));
	assert_false(linkwatch_flags_up(IFF_RUNNING));
	assert_false(linkwatch_flags_up(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(erofs_options_carry_the_name_and_extras),
		cmocka_unit_test(erofs_options_take_the_default_domain),
		cmocka_unit_test(mountinfo_matching_needs_path_type_and_fsid),
		cmocka_unit_test(a_single_slow_probe_never_acts),
		cmocka_unit_test(missing_and_stale_act_at_once),
		cmocka_unit_test(backoff_doubles_up_to_the_cap),
		cmocka_unit_test(state_file_round_trips),
		cmocka_unit_test(state_file_errors_name_the_line),
		cmocka_unit_test(nfs_origin_keys_are_checked),
		cmocka_unit_test(link_is_up_when_up_and_running),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
