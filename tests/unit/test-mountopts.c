// SPDX-License-Identifier: GPL-2.0-or-later
/* mount.blobcache's command line and -o options: what mount(8), umount(8), fstab and systemd
 * hand the helper must be understood, and everything the daemon cannot honour refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "cli/mountopts.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char err[512];

static int opts(const char *s, bool sloppy, struct mount_opts *o)
{
	err[0] = '\0';
	return mount_opts_parse(s, sloppy, o, err, sizeof(err));
}

static int args(bool is_umount, struct mount_args *a, int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	err[0] = '\0';
	return mount_args_parse(argc, argv, is_umount, a, err, sizeof(err));
}

static void test_defaults(void **state)
{
	struct mount_opts o;

	assert_int_equal(opts(NULL, false, &o), 0);
	assert_int_equal(o.timeout_ms, 0);
	assert_string_equal(o.run_dir, "/run/blobcached");
	assert_string_equal(o.erofs, "");
	assert_int_equal(opts("", false, &o), 0);
}

static void test_fstab_line_options(void **state)
{
	struct mount_opts o;

	/* What the README's fstab line gives, plus what mount(8) and systemd add. */
	assert_int_equal(opts("rw,defaults,nofail,x-systemd.requires=blobcached.service,"
			      "x-systemd.device-timeout=0,_netdev,timeout=60,noauto,comment=x",
			      false, &o),
			 0);
	assert_int_equal(o.timeout_ms, 60000);
	assert_string_equal(o.erofs, ""); /* nothing of that reaches the kernel */
	assert_int_equal(opts("ro,nosuid,nodev,noatime,relatime,async,user,nouser", false, &o), 0);
}

static void test_timeout_values(void **state)
{
	struct mount_opts o;

	assert_int_equal(opts("timeout=90s", false, &o), 0);
	assert_int_equal(o.timeout_ms, 90000);
	assert_int_equal(opts("timeout=2m", false, &o), 0);
	assert_int_equal(o.timeout_ms, 120000);
	assert_int_equal(opts("timeout=0", false, &o), 0);
	assert_int_equal(o.timeout_ms, 0);
	assert_int_equal(opts("timeout=500ms", false, &o), 0);
	assert_int_equal(o.timeout_ms, 500);
	assert_int_equal(opts("timeout=abc", false, &o), -EINVAL);
	assert_non_null(strstr(err, "timeout=abc"));
	assert_int_equal(opts("timeout=", false, &o), -EINVAL);
	assert_int_equal(opts("timeout", false, &o), -EINVAL);
	assert_int_equal(opts("timeout=2h", false, &o), -EINVAL); /* at most 1h */
	assert_int_equal(opts("timeout=-1", false, &o), -EINVAL);
	/* sloppy does not excuse a known option's bad value */
	assert_int_equal(opts("timeout=abc", true, &o), -EINVAL);
}

static void test_run_dir(void **state)
{
	struct mount_opts o;

	assert_int_equal(opts("run_dir=/run/other", false, &o), 0);
	assert_string_equal(o.run_dir, "/run/other");
	assert_int_equal(opts("run_dir=relative", false, &o), -EINVAL);
	assert_int_equal(opts("run_dir=", false, &o), -EINVAL);
}

static void test_erofs_options_passed_on(void **state)
{
	struct mount_opts o;

	assert_int_equal(opts("domain_id=shared,nofail,device=" HEX64, false, &o), 0);
	assert_string_equal(o.erofs, "domain_id=shared,device=" HEX64);
	assert_int_equal(opts("device=ABC", false, &o), -EINVAL);
	assert_int_equal(opts("device=" HEX64 "0", false, &o), -EINVAL);
	assert_int_equal(opts("domain_id=../x", false, &o), -EINVAL);
	assert_int_equal(opts("domain_id=", false, &o), -EINVAL);
}

static void test_refused(void **state)
{
	struct mount_opts o;

	assert_int_equal(opts("fsid=other", false, &o), -EINVAL);
	assert_non_null(strstr(err, "model name"));
	assert_int_equal(opts("fsid=other", true, &o), -EINVAL); /* never, even sloppy */
	assert_int_equal(opts("noexec", false, &o), -EINVAL);
	assert_non_null(strstr(err, "noexec"));
	assert_int_equal(opts("frobnicate", false, &o), -EINVAL);
	assert_non_null(strstr(err, "unknown option 'frobnicate'"));
	assert_int_equal(opts("nofail,bogus=1,timeout=5", false, &o), -EINVAL);
	assert_non_null(strstr(err, "'bogus=1'"));
	/* prefixes of known words are not known words */
	assert_int_equal(opts("x", false, &o), -EINVAL);
	assert_int_equal(opts("defaultsx", false, &o), -EINVAL);
	assert_int_equal(opts("timeoutx=1", false, &o), -EINVAL);
}

static void test_sloppy(void **state)
{
	struct mount_opts o;

	assert_int_equal(opts("frobnicate,timeout=5,noexec", true, &o), 0);
	assert_int_equal(o.timeout_ms, 5000);
	assert_string_equal(o.erofs, "");
}

static void test_empty_items(void **state)
{
	struct mount_opts o;

	assert_int_equal(opts(",,timeout=3,,", false, &o), 0);
	assert_int_equal(o.timeout_ms, 3000);
}

static void test_mount_command_line(void **state)
{
	struct mount_args a;

	/* mount(8): /sbin/mount.blobcache SPEC DIR [-sfnv] [-o OPTS] [-t TYPE] */
	assert_int_equal(args(false, &a, 7, "mount.blobcache", "m1", "/models/m1", "-o",
			      "rw,timeout=5", "-t", "blobcache"),
			 0);
	assert_string_equal(a.source, "m1");
	assert_string_equal(a.target, "/models/m1");
	assert_string_equal(a.options, "rw,timeout=5");
	assert_false(a.sloppy || a.fake || a.no_mtab || a.verbose);
	assert_int_equal(args(false, &a, 5, "mount.blobcache", "-sfnv", "m1", "/m", "-onofail"), 0);
	assert_true(a.sloppy && a.fake && a.no_mtab && a.verbose);
	assert_string_equal(a.options, "nofail");
	assert_string_equal(a.target, "/m");
	assert_int_equal(args(false, &a, 4, "mount.blobcache", "-r", "m1", "/m"), 0);
	assert_null(a.options);
}

static void test_mount_command_line_errors(void **state)
{
	struct mount_args a;

	assert_int_equal(args(false, &a, 2, "mount.blobcache", "m1"), -EINVAL);
	assert_non_null(strstr(err, "usage"));
	assert_int_equal(args(false, &a, 4, "mount.blobcache", "m1", "/m", "extra"), -EINVAL);
	assert_int_equal(args(false, &a, 4, "mount.blobcache", "m1", "/m", "-o"), -EINVAL);
	assert_non_null(strstr(err, "-o"));
	assert_int_equal(args(false, &a, 5, "mount.blobcache", "m1", "/m", "-N", "1234"), -EINVAL);
	assert_non_null(strstr(err, "namespace"));
	assert_int_equal(args(false, &a, 4, "mount.blobcache", "m1", "/m", "-l"), -EINVAL);
	assert_int_equal(args(false, &a, 4, "mount.blobcache", "m1", "/m", "-x"), -EINVAL);
	assert_non_null(strstr(err, "-x"));
}

static void test_umount_command_line(void **state)
{
	struct mount_args a;

	/* umount(8): /sbin/umount.blobcache DIR [-nlfvrd] [-t TYPE] */
	assert_int_equal(args(true, &a, 5, "umount.blobcache", "/models/m1", "-nl", "-t", "erofs"),
			 0);
	assert_string_equal(a.target, "/models/m1");
	assert_null(a.source);
	assert_true(a.no_mtab && a.lazy);
	assert_false(a.force);
	assert_int_equal(args(true, &a, 4, "umount.blobcache", "-f", "-v", "/m"), 0);
	assert_true(a.force && a.verbose);
	assert_int_equal(args(true, &a, 3, "umount.blobcache", "/m", "-o"), -EINVAL);
	assert_int_equal(args(true, &a, 3, "umount.blobcache", "/m", "/n"), -EINVAL);
	assert_int_equal(args(true, &a, 1, "umount.blobcache"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_fstab_line_options),
		cmocka_unit_test(test_timeout_values),
		cmocka_unit_test(test_run_dir),
		cmocka_unit_test(test_erofs_options_passed_on),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_sloppy),
		cmocka_unit_test(test_empty_items),
		cmocka_unit_test(test_mount_command_line),
		cmocka_unit_test(test_mount_command_line_errors),
		cmocka_unit_test(test_umount_command_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
