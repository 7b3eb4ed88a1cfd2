// SPDX-License-Identifier: GPL-2.0-or-later
/* blobcache-kcheck's rules: release parsing, .config parsing, and the verdict of each fact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "kcheck-rules.h"
#include "macros.h"

/* A host where everything is right: 6.10 (no deprecation note), modules, rebuilt nothing. */
static void good_facts(struct kc_facts *facts)
{
	static const char *const paths[_KC_MOD_COUNT] = {
		"/lib/modules/6.10.0/kernel/fs/cachefiles/cachefiles.ko",
		"/lib/modules/6.10.0/kernel/fs/erofs/erofs.ko",
		"/lib/modules/6.10.0/kernel/fs/netfs/netfs.ko",
	};

	*facts = (struct kc_facts){ 0 };
	snprintf(facts->release, sizeof(facts->release), "6.10.0-1-amd64");
	assert_int_equal(kc_parse_version(facts->release, &facts->version), 0);
	facts->version_valid = true;
	facts->is_running = true;
	snprintf(facts->config_source, sizeof(facts->config_source), "/boot/config-6.10.0-1-amd64");
	kc_config_parse("CONFIG_MODULES=y\n"
			"CONFIG_NETFS_SUPPORT=m\n"
			"CONFIG_FSCACHE=y\n"
			"CONFIG_CACHEFILES=m\n"
			"CONFIG_CACHEFILES_ONDEMAND=y\n"
			"CONFIG_EROFS_FS=m\n"
			"CONFIG_EROFS_FS_ONDEMAND=y\n"
			"CONFIG_BLK_DEV_UBLK=m\n"
			"CONFIG_IO_URING=y\n",
			&facts->config);
	facts->module_dir_present = true;
	snprintf(facts->module_dir, sizeof(facts->module_dir), "/lib/modules/6.10.0-1-amd64");
	for (int i = 0; i < _KC_MOD_COUNT; i++) {
		facts->modules[i].presence = KC_MODULE_FILE;
		facts->modules[i].loaded = true;
		snprintf(facts->modules[i].path, sizeof(facts->modules[i].path), "%s", paths[i]);
	}
	snprintf(facts->device_path, sizeof(facts->device_path), "/dev/cachefiles");
	facts->device_present = true;
	snprintf(facts->ublk_control_path, sizeof(facts->ublk_control_path), "/dev/ublk-control");
	facts->ublk_control_present = true;
	facts->ublk_module = (struct kc_module_facts){ .presence = KC_MODULE_FILE, .loaded = true };
}

static void set_release(struct kc_facts *facts, const char *release)
{
	snprintf(facts->release, sizeof(facts->release), "%s", release);
	facts->version_valid = kc_parse_version(release, &facts->version) == 0;
}

/* Evaluate and return the finding ID, failing the test (with the whole report) if it is absent. */
static const struct kc_finding *evaluate_and_find(const struct kc_facts *facts,
						  struct kc_report *report, const char *id)
{
	const struct kc_finding *f;

	kc_evaluate(facts, report);
	f = kc_report_find(report, id);
	if (!f) {
		for (size_t i = 0; i < report->count; i++)
			print_message("  have %s: %s\n", report->findings[i].id,
				      report->findings[i].summary);
		fail_msg("expected a finding \"%s\", found none", id);
	}
	return f;
}

static void assert_verdict(const struct kc_finding *f, enum kc_verdict expected)
{
	if (f->verdict != expected)
		fail_msg("%s: expected verdict %s, got %s (\"%s\")", f->id,
			 kc_verdict_name(expected), kc_verdict_name(f->verdict), f->summary);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

/* --- release parsing --- */

static void test_version_debian_release(void **state)
{
	struct kc_version v;

	assert_int_equal(kc_parse_version("6.12.117+deb12-cloud-amd64", &v), 0);
	assert_int_equal(v.major, 6);
	assert_int_equal(v.minor, 12);
	assert_int_equal(v.patch, 117);
}

static void test_version_ubuntu_release(void **state)
{
	struct kc_version v;

	assert_int_equal(kc_parse_version("5.15.0-1", &v), 0);
	assert_int_equal(v.major, 5);
	assert_int_equal(v.minor, 15);
	assert_int_equal(v.patch, 0);
}

static void test_version_plain_and_short(void **state)
{
	struct kc_version v;

	assert_int_equal(kc_parse_version("7.2.0", &v), 0);
	assert_int_equal(v.major, 7);
	assert_int_equal(v.minor, 2);
	assert_int_equal(kc_parse_version("6.8-rc3", &v), 0);
	assert_int_equal(v.minor, 8);
	assert_int_equal(v.patch, 0);
	assert_int_equal(kc_parse_version("6.18.44-fc-v669", &v), 0);
	assert_int_equal(v.patch, 44);
}

static void test_version_garbage_is_rejected(void **state)
{
	static const char *const garbage[] = {
		"", "abc", "6", "6.", ".12", "6.x", "6.12abc", "6.12.x", "v6.12.1", "1234567.1",
	};
	struct kc_version v = { .major = 99 };

	for (size_t i = 0; i < ARRAY_SIZE(garbage); i++)
		if (kc_parse_version(garbage[i], &v) != -EINVAL)
			fail_msg("expected \"%s\" to be rejected with -EINVAL", garbage[i]);
	assert_int_equal(kc_parse_version(NULL, &v), -EINVAL);
	/* A rejected string leaves the output alone. */
	assert_int_equal(v.major, 99);
}

static void test_version_at_least_ignores_patch(void **state)
{
	struct kc_version v = { 6, 8, 0 };

	assert_true(kc_version_at_least(&v, 6, 8));
	assert_true(kc_version_at_least(&v, 5, 19));
	assert_false(kc_version_at_least(&v, 6, 10));
	assert_false(kc_version_at_least(&v, 7, 0));
}

/* --- .config parsing --- */

static void test_config_values(void **state)
{
	static const char text[] = "#\n"
				   "# Automatically generated file; DO NOT EDIT.\n"
				   "CONFIG_MODULES=y\n"
				   "CONFIG_NETFS_SUPPORT=m\n"
				   "CONFIG_FSCACHE=y\n"
				   "CONFIG_CACHEFILES=m\n"
				   "# CONFIG_CACHEFILES_ONDEMAND is not set\n"
				   "CONFIG_EROFS_FS=m\n"
				   "CONFIG_LOCALVERSION=\"-cloud\"\n";
	struct kc_config c;

	kc_config_parse(text, &c);
	assert_int_equal(c.values[KC_SYM_MODULES], KC_CONFIG_YES);
	assert_int_equal(c.values[KC_SYM_NETFS_SUPPORT], KC_CONFIG_MODULE);
	assert_int_equal(c.values[KC_SYM_FSCACHE], KC_CONFIG_YES);
	assert_int_equal(c.values[KC_SYM_CACHEFILES], KC_CONFIG_MODULE);
	assert_int_equal(c.values[KC_SYM_CACHEFILES_ONDEMAND], KC_CONFIG_NO);
	assert_int_equal(c.values[KC_SYM_EROFS_FS], KC_CONFIG_MODULE);
	/* Not mentioned: its dependency is off. */
	assert_int_equal(c.values[KC_SYM_EROFS_FS_ONDEMAND], KC_CONFIG_ABSENT);
}

static void test_config_prefix_names_do_not_match(void **state)
{
	struct kc_config c;

	/* CONFIG_EROFS_FS_ONDEMAND must not be read as CONFIG_EROFS_FS, nor the reverse. */
	kc_config_parse("CONFIG_EROFS_FS_ONDEMAND=y\n# CONFIG_EROFS_FS_ZIP is not set\n"
			"CONFIG_CACHEFILES_DEBUG=y\n# CONFIG_CACHEFILES_ONDEMAND_X is not set\n",
			&c);
	assert_int_equal(c.values[KC_SYM_EROFS_FS_ONDEMAND], KC_CONFIG_YES);
	assert_int_equal(c.values[KC_SYM_EROFS_FS], KC_CONFIG_ABSENT);
	assert_int_equal(c.values[KC_SYM_CACHEFILES], KC_CONFIG_ABSENT);
	assert_int_equal(c.values[KC_SYM_CACHEFILES_ONDEMAND], KC_CONFIG_ABSENT);
}

static void test_config_odd_lines(void **state)
{
	struct kc_config c;

	/* CRLF endings, no final newline, =n, and an empty input. */
	kc_config_parse("CONFIG_CACHEFILES=y\r\nCONFIG_FSCACHE=n\r\nCONFIG_EROFS_FS=m", &c);
	assert_int_equal(c.values[KC_SYM_CACHEFILES], KC_CONFIG_YES);
	assert_int_equal(c.values[KC_SYM_FSCACHE], KC_CONFIG_NO);
	assert_int_equal(c.values[KC_SYM_EROFS_FS], KC_CONFIG_MODULE);
	kc_config_parse("", &c);
	for (int i = 0; i < _KC_SYM_COUNT; i++)
		assert_int_equal(c.values[i], KC_CONFIG_ABSENT);
}

/* --- kernel version verdicts --- */

static void test_good_host_is_all_ok(void **state)
{
	struct kc_report report;
	struct kc_facts facts;

	good_facts(&facts);
	kc_evaluate(&facts, &report);
	for (size_t i = 0; i < report.count; i++)
		assert_verdict(&report.findings[i], KC_OK);
	assert_int_equal(kc_report_worst(&report), KC_OK);
	assert_non_null(kc_report_find(&report, "device.node"));
}

static void test_kernel_older_than_5_19_is_a_problem(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	set_release(&facts, "5.15.0-1");
	f = evaluate_and_find(&facts, &report, "kernel.version");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->summary, "5.19");
	assert_true(f->fix[0]);
	/* No point in failover advice for a kernel without the mode at all. */
	assert_null(kc_report_find(&report, "kernel.failover"));
}

static void test_kernel_before_6_8_warns_about_failover(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	set_release(&facts, "6.1.0-18-amd64");
	f = evaluate_and_find(&facts, &report, "kernel.failover");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->summary, "remount");
	assert_verdict(kc_report_find(&report, "kernel.version"), KC_OK);
	assert_verdict(kc_report_find(&report, "kernel.hardening"), KC_INFO);

	set_release(&facts, "6.8.0");
	f = evaluate_and_find(&facts, &report, "kernel.failover");
	assert_verdict(f, KC_OK);
}

static void test_kernel_6_12_is_deprecated(void **state)
{
	struct kc_report report;
	struct kc_facts facts;

	good_facts(&facts);
	set_release(&facts, "6.12.117+deb12-cloud-amd64");
	assert_verdict(evaluate_and_find(&facts, &report, "kernel.deprecated"), KC_INFO);
	assert_verdict(kc_report_find(&report, "kernel.version"), KC_OK);
	assert_null(kc_report_find(&report, "kernel.hardening"));
	/* Info does not make the run fail. */
	assert_int_equal(kc_report_count(&report, KC_PROBLEM), 0);
}

static void test_kernel_7_2_removed_the_backend(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	set_release(&facts, "7.2.0");
	f = evaluate_and_find(&facts, &report, "kernel.version");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->fix, "ublk");

	set_release(&facts, "7.1.9");
	assert_verdict(evaluate_and_find(&facts, &report, "kernel.version"), KC_OK);
}

static void test_unparsable_release_warns(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	set_release(&facts, "garbage");
	assert_false(facts.version_valid);
	f = evaluate_and_find(&facts, &report, "kernel.version");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->fix, "--kernel");
}

/* --- config verdicts --- */

static void test_ondemand_off_with_modules_asks_for_rebuild(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.config.values[KC_SYM_CACHEFILES_ONDEMAND] = KC_CONFIG_NO;
	f = evaluate_and_find(&facts, &report, "config.cachefiles");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->fix, "blobcache-build-modules --install");
	assert_verdict(kc_report_find(&report, "config.erofs"), KC_OK);
}

static void test_ondemand_off_but_rebuilt_module_is_ok(void **state)
{
	struct kc_module_facts *m;
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.config.values[KC_SYM_EROFS_FS_ONDEMAND] = KC_CONFIG_ABSENT;
	m = &facts.modules[KC_MOD_EROFS];
	snprintf(m->updates_path, sizeof(m->updates_path),
		 "/lib/modules/6.10.0-1-amd64/updates/erofs.ko");
	snprintf(m->path, sizeof(m->path), "%s", m->updates_path);
	f = evaluate_and_find(&facts, &report, "config.erofs");
	assert_verdict(f, KC_OK);
	assert_contains(f->summary, "rebuilt");
	f = kc_report_find(&report, "module.erofs");
	assert_verdict(f, KC_OK);
	assert_contains(f->summary, "rebuilt module");
}

static void test_builtin_without_ondemand_cannot_be_rebuilt(void **state)
{
	struct kc_module_facts *m;
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.config.values[KC_SYM_EROFS_FS] = KC_CONFIG_YES;
	facts.config.values[KC_SYM_EROFS_FS_ONDEMAND] = KC_CONFIG_NO;
	/* Even with a rebuild installed: built-in code wins. */
	m = &facts.modules[KC_MOD_EROFS];
	snprintf(m->updates_path, sizeof(m->updates_path), "/lib/modules/x/updates/erofs.ko");
	f = evaluate_and_find(&facts, &report, "config.erofs");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->summary, "built into the kernel");
	assert_contains(f->fix, "ublk");
}

static void test_no_module_support_needs_another_kernel(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.config.values[KC_SYM_MODULES] = KC_CONFIG_NO;
	facts.config.values[KC_SYM_CACHEFILES] = KC_CONFIG_ABSENT;
	facts.config.values[KC_SYM_CACHEFILES_ONDEMAND] = KC_CONFIG_ABSENT;
	facts.module_dir_present = false;
	for (int i = 0; i < _KC_MOD_COUNT; i++)
		facts.modules[i] = (struct kc_module_facts){ .presence = KC_MODULE_UNKNOWN };
	facts.device_present = false;
	f = evaluate_and_find(&facts, &report, "config.cachefiles");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->summary, "cannot load modules");
	assert_verdict(kc_report_find(&report, "modules.dir"), KC_INFO);
	f = kc_report_find(&report, "device.node");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->summary, "not part of this kernel");
	/* modprobe would be a useless hint here. */
	assert_false(f->fix[0]);
}

static void test_missing_fscache_is_a_problem(void **state)
{
	struct kc_report report;
	struct kc_facts facts;

	good_facts(&facts);
	facts.config.values[KC_SYM_FSCACHE] = KC_CONFIG_ABSENT;
	assert_verdict(evaluate_and_find(&facts, &report, "config.fscache"), KC_PROBLEM);
}

static void test_missing_config_warns_and_relies_on_modules(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.config_source[0] = '\0';
	facts.config_error = -ENOENT;
	facts.config = (struct kc_config){ 0 };
	f = evaluate_and_find(&facts, &report, "config.source");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->summary, "not found");
	assert_null(kc_report_find(&report, "config.cachefiles"));
	assert_verdict(kc_report_find(&report, "module.cachefiles"), KC_OK);
	assert_int_equal(kc_report_worst(&report), KC_WARNING);
}

/* --- module verdicts --- */

static void test_module_not_loaded_suggests_modprobe(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.modules[KC_MOD_CACHEFILES].loaded = false;
	f = evaluate_and_find(&facts, &report, "module.cachefiles");
	assert_verdict(f, KC_INFO);
	assert_contains(f->fix, "modprobe cachefiles");
	assert_contains(f->summary, "kernel/fs/cachefiles/cachefiles.ko");

	/* Another kernel than the running one: load state means nothing. */
	facts.is_running = false;
	f = evaluate_and_find(&facts, &report, "module.cachefiles");
	assert_verdict(f, KC_OK);
	assert_false(f->fix[0]);
	assert_verdict(kc_report_find(&report, "device.node"), KC_INFO);
}

static void test_module_missing_is_a_problem(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.modules[KC_MOD_CACHEFILES].presence = KC_MODULE_MISSING;
	facts.modules[KC_MOD_CACHEFILES].loaded = false;
	f = evaluate_and_find(&facts, &report, "module.cachefiles");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->fix, "blobcache-build-modules");

	/* Missing from modules.builtin but =y in the config: built in after all. */
	facts.config.values[KC_SYM_CACHEFILES] = KC_CONFIG_YES;
	assert_verdict(evaluate_and_find(&facts, &report, "module.cachefiles"), KC_OK);
}

static void test_rebuild_unknown_to_depmod_warns(void **state)
{
	struct kc_module_facts *m;
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	m = &facts.modules[KC_MOD_CACHEFILES];
	snprintf(m->updates_path, sizeof(m->updates_path),
		 "/lib/modules/6.10.0-1-amd64/updates/cachefiles.ko");
	/* modprobe still resolves to the distribution's module. */
	f = evaluate_and_find(&facts, &report, "module.cachefiles");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->fix, "depmod -a 6.10.0-1-amd64");

	m->presence = KC_MODULE_MISSING;
	f = evaluate_and_find(&facts, &report, "module.cachefiles");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->fix, "depmod");
}

static void test_missing_module_dir_warns(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.module_dir_present = false;
	f = evaluate_and_find(&facts, &report, "modules.dir");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->summary, "/lib/modules/6.10.0-1-amd64");
}

/* --- device verdicts --- */

static const struct kc_finding *device_with_open_error(struct kc_facts *facts,
						       struct kc_report *report, int err)
{
	good_facts(facts);
	facts->device_open_error = err;
	return evaluate_and_find(facts, report, "device.node");
}

static void test_device_busy_names_cachefilesd(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f = device_with_open_error(&facts, &report, -EBUSY);

	assert_verdict(f, KC_WARNING);
	assert_contains(f->summary, "another process");
	assert_contains(f->fix, "systemctl stop cachefilesd");
}

static void test_device_permission_asks_for_root(void **state)
{
	struct kc_report report;
	struct kc_facts facts;

	assert_contains(device_with_open_error(&facts, &report, -EACCES)->fix, "run as root");
	assert_contains(device_with_open_error(&facts, &report, -EPERM)->fix, "run as root");
}

static void test_device_without_driver_asks_for_modprobe(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f = device_with_open_error(&facts, &report, -ENXIO);

	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->fix, "modprobe cachefiles");

	/* No node at all, module not loaded, config allows a module. */
	good_facts(&facts);
	facts.device_present = false;
	facts.modules[KC_MOD_CACHEFILES].loaded = false;
	f = evaluate_and_find(&facts, &report, "device.node");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->summary, "not loaded");
	assert_contains(f->fix, "modprobe cachefiles");
}

static void test_device_not_probed_without_option(void **state)
{
	struct kc_report report;
	struct kc_facts facts;

	good_facts(&facts);
	kc_evaluate(&facts, &report);
	assert_null(kc_report_find(&report, "device.probe"));
}

static void test_probe_einval_means_no_ondemand(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.probe_stage = KC_PROBE_BIND;
	facts.probe_error = -EINVAL;
	snprintf(facts.probe_dir, sizeof(facts.probe_dir), "/var/cache/kcheck");
	f = evaluate_and_find(&facts, &report, "device.probe");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->summary, "lacks on-demand support");

	facts.probe_error = -EOPNOTSUPP;
	f = evaluate_and_find(&facts, &report, "device.probe");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->fix, "ext4 or XFS");

	facts.probe_error = 0;
	f = evaluate_and_find(&facts, &report, "device.probe");
	assert_verdict(f, KC_OK);
	assert_contains(f->summary, "/var/cache/kcheck");

	facts.probe_stage = KC_PROBE_DIR;
	facts.probe_error = -ENAMETOOLONG;
	f = evaluate_and_find(&facts, &report, "device.probe");
	assert_verdict(f, KC_PROBLEM);
	assert_contains(f->summary, "\"dir\"");
}

/* --- front ends --- */

static void test_stock_kernel_ondemand_no_ublk_yes(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	set_release(&facts, "6.12.117+deb12-cloud-amd64");
	kc_config_parse("CONFIG_MODULES=y\nCONFIG_NETFS_SUPPORT=m\nCONFIG_FSCACHE=y\n"
			"CONFIG_CACHEFILES=m\n# CONFIG_CACHEFILES_ONDEMAND is not set\n"
			"CONFIG_EROFS_FS=m\n# CONFIG_EROFS_FS_ONDEMAND is not set\n"
			"CONFIG_BLK_DEV_UBLK=m\nCONFIG_BLKDEV_UBLK_LEGACY_OPCODES=y\n"
			"CONFIG_IO_URING=y\n",
			&facts.config);
	f = evaluate_and_find(&facts, &report, "frontend.ondemand");
	assert_verdict(f, KC_INFO);
	assert_contains(f->summary, "frontend = auto uses ublk");
	f = kc_report_find(&report, "frontend.ublk");
	assert_non_null(f);
	assert_verdict(f, KC_OK);
	assert_contains(f->summary, "/dev/ublk-control");

	/* Not loaded yet: the fix is modprobe. */
	facts.ublk_control_present = false;
	f = evaluate_and_find(&facts, &report, "frontend.ublk");
	assert_verdict(f, KC_INFO);
	assert_contains(f->fix, "modprobe ublk_drv");
}

static void test_ublk_unusable_says_why_and_the_fix(void **state)
{
	struct kc_report report;
	struct kc_facts facts;
	const struct kc_finding *f;

	good_facts(&facts);
	facts.ublk_control_present = false;
	facts.config.values[KC_SYM_BLK_DEV_UBLK] = KC_CONFIG_NO;
	f = evaluate_and_find(&facts, &report, "frontend.ublk");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->summary, "CONFIG_BLK_DEV_UBLK is not set");
	assert_contains(f->fix, "CONFIG_BLK_DEV_UBLK=m");
	assert_verdict(kc_report_find(&report, "frontend.ondemand"), KC_OK);

	facts.config.values[KC_SYM_BLK_DEV_UBLK] = KC_CONFIG_MODULE;
	facts.config.values[KC_SYM_BLKDEV_UBLK_LEGACY_OPCODES] = KC_CONFIG_NO;
	f = evaluate_and_find(&facts, &report, "frontend.ublk");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->summary, "legacy");

	good_facts(&facts);
	set_release(&facts, "5.15.0");
	f = evaluate_and_find(&facts, &report, "frontend.ublk");
	assert_verdict(f, KC_WARNING);
	assert_contains(f->summary, "6.0");
}

static void test_report_counts(void **state)
{
	struct kc_report report;
	struct kc_facts facts;

	good_facts(&facts);
	set_release(&facts, "6.1.0");		    /* failover warning + hardening info */
	facts.device_open_error = -ENODEV;	    /* problem */
	facts.modules[KC_MOD_EROFS].loaded = false; /* info */
	kc_evaluate(&facts, &report);
	assert_int_equal(kc_report_count(&report, KC_PROBLEM), 1);
	assert_int_equal(kc_report_count(&report, KC_WARNING), 1);
	/* ... + frontend.ondemand: not usable (info; ublk is) */
	assert_int_equal(kc_report_count(&report, KC_INFO), 3);
	assert_int_equal(kc_report_worst(&report), KC_PROBLEM);
	assert_null(kc_report_find(&report, "no.such.check"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_debian_release),
		cmocka_unit_test(test_version_ubuntu_release),
		cmocka_unit_test(test_version_plain_and_short),
		cmocka_unit_test(test_version_garbage_is_rejected),
		cmocka_unit_test(test_version_at_least_ignores_patch),
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_config_prefix_names_do_not_match),
		cmocka_unit_test(test_config_odd_lines),
		cmocka_unit_test(test_good_host_is_all_ok),
		cmocka_unit_test(test_kernel_older_than_5_19_is_a_problem),
		cmocka_unit_test(test_kernel_before_6_8_warns_about_failover),
		cmocka_unit_test(test_kernel_6_12_is_deprecated),
		cmocka_unit_test(test_kernel_7_2_removed_the_backend),
		cmocka_unit_test(test_unparsable_release_warns),
		cmocka_unit_test(test_ondemand_off_with_modules_asks_for_rebuild),
		cmocka_unit_test(test_ondemand_off_but_rebuilt_module_is_ok),
		cmocka_unit_test(test_builtin_without_ondemand_cannot_be_rebuilt),
		cmocka_unit_test(test_no_module_support_needs_another_kernel),
		cmocka_unit_test(test_missing_fscache_is_a_problem),
		cmocka_unit_test(test_missing_config_warns_and_relies_on_modules),
		cmocka_unit_test(test_module_not_loaded_suggests_modprobe),
		cmocka_unit_test(test_module_missing_is_a_problem),
		cmocka_unit_test(test_rebuild_unknown_to_depmod_warns),
		cmocka_unit_test(test_missing_module_dir_warns),
		cmocka_unit_test(test_device_busy_names_cachefilesd),
		cmocka_unit_test(test_device_permission_asks_for_root),
		cmocka_unit_test(test_device_without_driver_asks_for_modprobe),
		cmocka_unit_test(test_device_not_probed_without_option),
		cmocka_unit_test(test_probe_einval_means_no_ondemand),
		cmocka_unit_test(test_report_counts),
		cmocka_unit_test(test_stock_kernel_ondemand_no_ublk_yes),
		cmocka_unit_test(test_ublk_unusable_says_why_and_the_fix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
