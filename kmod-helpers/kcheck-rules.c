// SPDX-License-Identifier: GPL-2.0-or-later
/* blobcache-kcheck's decisions: facts in, findings out. No I/O here. */
#include "kcheck-rules.h"
#include "macros.h"

#include <ctype.h>
#include <stdarg.h>

#define FIX_BUILD_MODULES "blobcache-build-modules --install"
#define FIX_OTHER_KERNEL                                                                           \
	"boot a kernel with CONFIG_FSCACHE, CONFIG_CACHEFILES_ONDEMAND=y and "                     \
	"CONFIG_EROFS_FS_ONDEMAND=y, or one that loads modules (then " FIX_BUILD_MODULES "), or "  \
	"use blobcached's ublk front end"

const char *kc_verdict_name(enum kc_verdict verdict)
{
	switch (verdict) {
	case KC_OK:
		return "ok";
	case KC_INFO:
		return "info";
	case KC_WARNING:
		return "warning";
	case KC_PROBLEM:
		return "problem";
	}
	return "?";
}

/* Read a decimal number of at most 5 digits; returns the end, or NULL if there is none. */
static const char *parse_number(const char *s, unsigned int *out)
{
	unsigned int n = 0;
	int digits = 0;

	while (isdigit((unsigned char)*s)) {
		if (++digits > 5)
			return NULL;
		n = n * 10 + (unsigned int)(*s - '0');
		s++;
	}
	if (digits == 0)
		return NULL;
	*out = n;
	return s;
}

int kc_parse_version(const char *release, struct kc_version *out)
{
	struct kc_version v = { 0 };
	const char *p;

	if (!release)
		return -EINVAL;
	p = parse_number(release, &v.major);
	if (!p || *p != '.')
		return -EINVAL;
	p = parse_number(p + 1, &v.minor);
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		p = parse_number(p + 1, &v.patch);
		if (!p)
			return -EINVAL;
	}
	/* What follows is the local version ("-1", "+deb12-cloud-amd64", "-rc3"), or nothing. */
	if (*p != '\0' && *p != '-' && *p != '+' && *p != '_' && *p != '~')
		return -EINVAL;
	*out = v;
	return 0;
}

bool kc_version_at_least(const struct kc_version *v, unsigned int major, unsigned int minor)
{
	return v->major > major || (v->major == major && v->minor >= minor);
}

static const char *const symbol_names[_KC_SYM_COUNT] = {
	[KC_SYM_MODULES] = "CONFIG_MODULES",
	[KC_SYM_NETFS_SUPPORT] = "CONFIG_NETFS_SUPPORT",
	[KC_SYM_FSCACHE] = "CONFIG_FSCACHE",
	[KC_SYM_CACHEFILES] = "CONFIG_CACHEFILES",
	[KC_SYM_CACHEFILES_ONDEMAND] = "CONFIG_CACHEFILES_ONDEMAND",
	[KC_SYM_EROFS_FS] = "CONFIG_EROFS_FS",
	[KC_SYM_EROFS_FS_ONDEMAND] = "CONFIG_EROFS_FS_ONDEMAND",
	[KC_SYM_BLK_DEV_UBLK] = "CONFIG_BLK_DEV_UBLK",
	[KC_SYM_BLKDEV_UBLK_LEGACY_OPCODES] = "CONFIG_BLKDEV_UBLK_LEGACY_OPCODES",
	[KC_SYM_IO_URING] = "CONFIG_IO_URING",
};

const char *kc_symbol_name(enum kc_symbol symbol)
{
	if ((unsigned int)symbol >= _KC_SYM_COUNT)
		return "?";
	return symbol_names[symbol];
}

const char *kc_config_value_name(enum kc_config_value value)
{
	switch (value) {
	case KC_CONFIG_ABSENT:
		return " absent";
	case KC_CONFIG_NO:
		return " is not set";
	case KC_CONFIG_MODULE:
		return "=m";
	case KC_CONFIG_YES:
		return "=y";
	}
	return "?";
}

static int symbol_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < _KC_SYM_COUNT; i++)
		if (strlen(symbol_names[i]) == len && memcmp(symbol_names[i], name, len) == 0)
			return (int)i;
	return -1;
}

/* One line of a .config, without its newline. */
static void config_parse_line(const char *line, size_t len, struct kc_config *out)
{
	static const char not_set[] = " is not set";
	const char *end = line + len;
	const char *name;
	size_t name_len;
	int symbol;

	while (line < end && isspace((unsigned char)*line))
		line++;
	while (end > line && isspace((unsigned char)end[-1]))
		end--;

	if (line < end && *line == '#') {
		/* "# CONFIG_FOO is not set" */
		line++;
		while (line < end && *line == ' ')
			line++;
		if ((size_t)(end - line) <= sizeof(not_set) - 1 ||
		    memcmp(end - (sizeof(not_set) - 1), not_set, sizeof(not_set) - 1) != 0)
			return;
		symbol = symbol_lookup(line, (size_t)(end - line) - (sizeof(not_set) - 1));
		if (symbol >= 0)
			out->values[symbol] = KC_CONFIG_NO;
		return;
	}

	name = line;
	while (line < end && *line != '=')
		line++;
	if (line == end)
		return;
	name_len = (size_t)(line - name);
	symbol = symbol_lookup(name, name_len);
	if (symbol < 0)
		return;
	line++;
	if (end - line == 1 && *line == 'y')
		out->values[symbol] = KC_CONFIG_YES;
	else if (end - line == 1 && *line == 'm')
		out->values[symbol] = KC_CONFIG_MODULE;
	else if (end - line == 1 && *line == 'n')
		out->values[symbol] = KC_CONFIG_NO;
}

void kc_config_parse(const char *text, struct kc_config *out)
{
	*out = (struct kc_config){ 0 };
	if (!text)
		return;
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);

		config_parse_line(text, len, out);
		text += len;
		if (*text == '\n')
			text++;
	}
}

static const char *const module_names[_KC_MOD_COUNT] = {
	[KC_MOD_CACHEFILES] = "cachefiles",
	[KC_MOD_EROFS] = "erofs",
	[KC_MOD_NETFS] = "netfs",
};

const char *kc_module_name(enum kc_module_id id)
{
	if ((unsigned int)id >= _KC_MOD_COUNT)
		return "?";
	return module_names[id];
}

static struct kc_finding *add(struct kc_report *report, const char *id, const char *section,
			      enum kc_verdict verdict)
{
	struct kc_finding *f;

	/* The rules below emit far fewer than KC_MAX_FINDINGS; keep the last slot if that changes.
	 */
	if (report->count == KC_MAX_FINDINGS)
		report->count--;
	f = &report->findings[report->count++];
	*f = (struct kc_finding){ .id = id, .section = section, .verdict = verdict };
	return f;
}

static _printf_(2, 3) void say(struct kc_finding *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->summary, sizeof(f->summary), fmt, ap);
	va_end(ap);
}

static _printf_(2, 3) void advise(struct kc_finding *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->fix, sizeof(f->fix), fmt, ap);
	va_end(ap);
}

static void evaluate_kernel(const struct kc_facts *facts, struct kc_report *report)
{
	const struct kc_version *v = &facts->version;
	struct kc_finding *f;

	if (!facts->version_valid) {
		f = add(report, "kernel.version", "kernel", KC_WARNING);
		say(f, "cannot parse kernel release \"%s\": version checks skipped",
		    facts->release);
		advise(f, "pass the release explicitly: --kernel 6.12.0-1-amd64");
		return;
	}
	if (!kc_version_at_least(v, 5, 19)) {
		f = add(report, "kernel.version", "kernel", KC_PROBLEM);
		say(f, "kernel %u.%u is older than 5.19: no cachefiles on-demand mode at all",
		    v->major, v->minor);
		advise(f, "run a kernel from 6.8 to 7.1 (6.12 LTS) with on-demand support, or use "
			  "blobcached's ublk front end");
		return;
	}
	if (kc_version_at_least(v, 7, 2)) {
		f = add(report, "kernel.version", "kernel", KC_PROBLEM);
		say(f, "kernel %u.%u: the EROFS fscache backend was removed upstream in 7.2",
		    v->major, v->minor);
		advise(f, "use blobcached's ublk front end, or run an LTS kernel that still has it "
			  "(6.12)");
		return;
	}
	f = add(report, "kernel.version", "kernel", KC_OK);
	say(f, "kernel %u.%u.%u: cachefiles on-demand mode exists (since 5.19)", v->major, v->minor,
	    v->patch);

	if (kc_version_at_least(v, 6, 8)) {
		f = add(report, "kernel.failover", "kernel", KC_OK);
		say(f,
		    "failover (\"restore\", 6.8+) available: a daemon restart keeps mounts alive");
	} else {
		f = add(report, "kernel.failover", "kernel", KC_WARNING);
		say(f, "no failover before 6.8: if blobcached restarts, the cache dies and every "
		       "mount "
		       "fails with EIO until it is remounted");
		advise(f, "run 6.8 or later, or plan for remounting images after a daemon restart");
	}

	if (!kc_version_at_least(v, 6, 10)) {
		f = add(report, "kernel.hardening", "kernel", KC_INFO);
		say(f, "on-demand hardening fixes arrived in 6.10 (CVE-2024-40900, -41051, -41057, "
		       "-41058, -41075)");
		advise(f, "check that your distribution backported them, or run 6.10 or later");
	}

	if (kc_version_at_least(v, 6, 12)) {
		f = add(report, "kernel.deprecated", "kernel", KC_INFO);
		say(f, "the EROFS fscache backend is deprecated since 6.12 (mounts log "
		       "\"[deprecated]\") "
		       "and removed in 7.2");
		advise(f, "plan the move to blobcached's ublk front end before upgrading past 7.1");
	}
}

static bool config_on(enum kc_config_value value)
{
	return value == KC_CONFIG_YES || value == KC_CONFIG_MODULE;
}

/* A rebuilt module is only picked up if the kernel loads modules and the code is not built in. */
static bool rebuilt_module_usable(const struct kc_facts *facts, enum kc_symbol base,
				  enum kc_module_id module)
{
	return facts->modules[module].updates_path[0] &&
	       facts->config.values[KC_SYM_MODULES] == KC_CONFIG_YES &&
	       facts->config.values[base] != KC_CONFIG_YES;
}

static void evaluate_config_pair(const struct kc_facts *facts, struct kc_report *report,
				 const char *id, enum kc_symbol base, enum kc_symbol ondemand,
				 enum kc_module_id module)
{
	const enum kc_config_value *values = facts->config.values;
	const char *name = kc_module_name(module);
	struct kc_finding *f;
	char state[160];

	snprintf(state, sizeof(state), "%s%s, %s%s", kc_symbol_name(base),
		 kc_config_value_name(values[base]), kc_symbol_name(ondemand),
		 kc_config_value_name(values[ondemand]));

	if (config_on(values[base]) && values[ondemand] == KC_CONFIG_YES) {
		f = add(report, id, "config", KC_OK);
		say(f, "%s", state);
		return;
	}
	if (rebuilt_module_usable(facts, base, module)) {
		f = add(report, id, "config", KC_OK);
		say(f, "%s, but a rebuilt %s module is installed: %s", state, name,
		    facts->modules[module].updates_path);
		advise(f, "confirm on-demand support with --probe DIR");
		return;
	}

	f = add(report, id, "config", KC_PROBLEM);
	if (values[base] == KC_CONFIG_YES) {
		say(f,
		    "%s: %s is built into the kernel without on-demand support, and a rebuilt "
		    "module cannot replace built-in code",
		    state, name);
		advise(f, "%s", FIX_OTHER_KERNEL);
	} else if (values[KC_SYM_MODULES] != KC_CONFIG_YES) {
		say(f,
		    "%s: no on-demand %s, and this kernel cannot load modules (CONFIG_MODULES%s)",
		    state, name, kc_config_value_name(values[KC_SYM_MODULES]));
		advise(f, "%s", FIX_OTHER_KERNEL);
	} else {
		say(f, "%s: no on-demand %s in this kernel's build (as in Debian's kernels)", state,
		    name);
		advise(f, "rebuild %s.ko with on-demand support: %s", name, FIX_BUILD_MODULES);
	}
}

static void evaluate_config(const struct kc_facts *facts, struct kc_report *report)
{
	const enum kc_config_value *values = facts->config.values;
	struct kc_finding *f;

	if (!facts->config_source[0]) {
		f = add(report, "config.source", "config", KC_WARNING);
		say(f, "kernel config not found (%s): judging from modules only",
		    facts->config_error == -ENOENT ? "no /boot/config-VERSION, no /proc/config.gz"
						   : strerror(-facts->config_error));
		advise(f,
		       "install the kernel's config file in /boot, or enable CONFIG_IKCONFIG_PROC");
		return;
	}
	f = add(report, "config.source", "config", KC_OK);
	say(f, "read %s", facts->config_source);

	if (config_on(values[KC_SYM_FSCACHE])) {
		f = add(report, "config.fscache", "config", KC_OK);
		say(f, "%s%s, %s%s", kc_symbol_name(KC_SYM_FSCACHE),
		    kc_config_value_name(values[KC_SYM_FSCACHE]),
		    kc_symbol_name(KC_SYM_NETFS_SUPPORT),
		    kc_config_value_name(values[KC_SYM_NETFS_SUPPORT]));
	} else {
		f = add(report, "config.fscache", "config", KC_PROBLEM);
		say(f, "%s%s: no local caching layer for cachefiles to plug into",
		    kc_symbol_name(KC_SYM_FSCACHE), kc_config_value_name(values[KC_SYM_FSCACHE]));
		advise(f, "%s", FIX_OTHER_KERNEL);
	}
	evaluate_config_pair(facts, report, "config.cachefiles", KC_SYM_CACHEFILES,
			     KC_SYM_CACHEFILES_ONDEMAND, KC_MOD_CACHEFILES);
	evaluate_config_pair(facts, report, "config.erofs", KC_SYM_EROFS_FS,
			     KC_SYM_EROFS_FS_ONDEMAND, KC_MOD_EROFS);
}

static const char *const module_ids[_KC_MOD_COUNT] = {
	[KC_MOD_CACHEFILES] = "module.cachefiles",
	[KC_MOD_EROFS] = "module.erofs",
	[KC_MOD_NETFS] = "module.netfs",
};

static const enum kc_symbol module_symbols[_KC_MOD_COUNT] = {
	[KC_MOD_CACHEFILES] = KC_SYM_CACHEFILES,
	[KC_MOD_EROFS] = KC_SYM_EROFS_FS,
	[KC_MOD_NETFS] = KC_SYM_FSCACHE,
};

static bool path_is_rebuild(const char *path)
{
	return strstr(path, "/updates/") != NULL;
}

static void evaluate_module(const struct kc_facts *facts, struct kc_report *report,
			    enum kc_module_id id)
{
	const struct kc_module_facts *m = &facts->modules[id];
	const char *name = id == KC_MOD_NETFS ? "netfs/fscache" : kc_module_name(id);
	bool config_builtin = facts->config.values[module_symbols[id]] == KC_CONFIG_YES;
	struct kc_finding *f;

	switch (m->presence) {
	case KC_MODULE_UNKNOWN:
		return;
	case KC_MODULE_BUILTIN:
		f = add(report, module_ids[id], "modules", KC_OK);
		say(f, "%s: built into the kernel", name);
		return;
	case KC_MODULE_FILE:
		if (m->updates_path[0] && !path_is_rebuild(m->path)) {
			f = add(report, module_ids[id], "modules", KC_WARNING);
			say(f, "%s: a rebuilt module is installed (%s) but modprobe would load %s",
			    name, m->updates_path, m->path);
			advise(f, "run depmod -a %s", facts->release);
			return;
		}
		if (!facts->is_running) {
			f = add(report, module_ids[id], "modules", KC_OK);
			say(f, "%s: module file%s present (%s)", name,
			    path_is_rebuild(m->path) ? " (rebuilt)" : "", m->path);
			return;
		}
		f = add(report, module_ids[id], "modules", m->loaded ? KC_OK : KC_INFO);
		say(f, "%s: %s%s (%s)", name, m->loaded ? "loaded" : "not loaded",
		    path_is_rebuild(m->path) ? ", rebuilt module" : "", m->path);
		if (!m->loaded)
			advise(f, "modprobe %s", kc_module_name(id));
		return;
	case KC_MODULE_MISSING:
		break;
	}

	/* Config says built in, but modules.builtin did not: trust the config. */
	if (config_builtin) {
		f = add(report, module_ids[id], "modules", KC_OK);
		say(f, "%s: built into the kernel (per its config)", name);
		return;
	}
	if (m->updates_path[0]) {
		f = add(report, module_ids[id], "modules", KC_WARNING);
		say(f, "%s: %s is installed but depmod does not know it", name, m->updates_path);
		advise(f, "run depmod -a %s", facts->release);
		return;
	}
	f = add(report, module_ids[id], "modules", KC_PROBLEM);
	say(f, "%s: neither built in nor found in %s", name, facts->module_dir);
	if (id == KC_MOD_NETFS)
		advise(f, "install this kernel's modules package (netfs.ko, or fscache.ko before "
			  "6.8)");
	else
		advise(f, "%s", FIX_BUILD_MODULES);
}

static void evaluate_modules(const struct kc_facts *facts, struct kc_report *report)
{
	struct kc_finding *f;

	if (!facts->module_dir_present) {
		if (facts->config_source[0] &&
		    facts->config.values[KC_SYM_MODULES] != KC_CONFIG_YES) {
			f = add(report, "modules.dir", "modules", KC_INFO);
			say(f,
			    "kernel built without module support (CONFIG_MODULES%s): only built-in "
			    "code counts",
			    kc_config_value_name(facts->config.values[KC_SYM_MODULES]));
		} else {
			f = add(report, "modules.dir", "modules", KC_WARNING);
			say(f, "%s does not exist: module files cannot be checked",
			    facts->module_dir);
			advise(f,
			       "install this kernel's modules package, or point --kernel/--root at "
			       "the right tree");
		}
		return;
	}
	for (int id = 0; id < _KC_MOD_COUNT; id++)
		evaluate_module(facts, report, (enum kc_module_id)id);
}

static bool cachefiles_in_kernel(const struct kc_facts *facts)
{
	const struct kc_module_facts *m = &facts->modules[KC_MOD_CACHEFILES];

	return m->loaded || m->presence == KC_MODULE_BUILTIN ||
	       facts->config.values[KC_SYM_CACHEFILES] == KC_CONFIG_YES;
}

static void evaluate_probe(const struct kc_facts *facts, struct kc_report *report)
{
	int err = -facts->probe_error;
	struct kc_finding *f;

	if (facts->probe_stage == KC_PROBE_NOT_RUN)
		return;
	if (facts->probe_stage != KC_PROBE_BIND) {
		f = add(report, "device.probe", "device", KC_PROBLEM);
		say(f, "writing \"%s\" to %s failed: %s",
		    facts->probe_stage == KC_PROBE_DIR ? "dir" : "tag", facts->device_path,
		    strerror(err));
		advise(f, "see dmesg for the kernel's reason");
		return;
	}
	if (err == 0) {
		f = add(report, "device.probe", "device", KC_OK);
		say(f,
		    "\"bind ondemand\" accepted with cache directory %s: the kernel has on-demand "
		    "support (cache unbound again on close)",
		    facts->probe_dir);
		return;
	}
	f = add(report, "device.probe", "device", err == EBUSY ? KC_WARNING : KC_PROBLEM);
	switch (err) {
	case EINVAL:
		say(f, "\"bind ondemand\" refused (EINVAL): the loaded cachefiles lacks on-demand "
		       "support");
		advise(f, "load a rebuilt cachefiles.ko (%s) or %s", FIX_BUILD_MODULES,
		       FIX_OTHER_KERNEL);
		break;
	case EOPNOTSUPP:
		say(f,
		    "%s cannot hold a cache: its filesystem lacks xattrs, O_TMPFILE or sync_fs "
		    "(tmpfs is refused)",
		    facts->probe_dir);
		advise(f, "probe with a directory on ext4 or XFS");
		break;
	case ENOENT:
	case ENOTDIR:
		say(f, "cache directory %s: %s", facts->probe_dir, strerror(err));
		advise(f, "create it, or pass an existing directory to --probe");
		break;
	case EBUSY:
		say(f, "a cache is already bound on this open file: %s", strerror(err));
		break;
	default:
		say(f, "\"bind ondemand\" with cache directory %s failed: %s", facts->probe_dir,
		    strerror(err));
		advise(f, "see dmesg for the kernel's reason (\"CacheFiles: ...\")");
		break;
	}
}

static void evaluate_device(const struct kc_facts *facts, struct kc_report *report)
{
	const char *dev = facts->device_path;
	int err = -facts->device_open_error;
	struct kc_finding *f;

	if (!facts->is_running) {
		f = add(report, "device.node", "device", KC_INFO);
		say(f, "%s not checked: kernel %s is not the running kernel", dev, facts->release);
		return;
	}
	if (!facts->device_present) {
		f = add(report, "device.node", "device", KC_PROBLEM);
		if (cachefiles_in_kernel(facts)) {
			say(f, "%s does not exist although cachefiles is in the kernel", dev);
			advise(f,
			       "check that devtmpfs is mounted on /dev (misc device \"cachefiles\" "
			       "in /proc/misc)");
		} else if (facts->config_source[0] &&
			   !config_on(facts->config.values[KC_SYM_CACHEFILES]) &&
			   !rebuilt_module_usable(facts, KC_SYM_CACHEFILES, KC_MOD_CACHEFILES)) {
			say(f,
			    "%s does not exist: cachefiles is not part of this kernel (see config)",
			    dev);
		} else {
			say(f, "%s does not exist: cachefiles is not loaded", dev);
			advise(f, "modprobe cachefiles (once the checks above pass)");
		}
		return;
	}

	switch (err) {
	case 0:
		f = add(report, "device.node", "device", KC_OK);
		say(f, "%s opens read-write (closed again without writing)", dev);
		evaluate_probe(facts, report);
		return;
	case EBUSY:
		f = add(report, "device.node", "device", KC_WARNING);
		say(f,
		    "%s is in use by another process: only one process on the host may hold it "
		    "(cachefilesd? a running blobcached?)",
		    dev);
		advise(f, "systemctl stop cachefilesd (nothing to do if the holder is blobcached)");
		return;
	case EPERM:
	case EACCES:
		f = add(report, "device.node", "device", KC_WARNING);
		say(f, "%s: %s, so it could not be checked", dev, strerror(err));
		advise(f, "run as root (the device needs CAP_SYS_ADMIN)");
		return;
	case ENOENT:
	case ENXIO:
	case ENODEV:
		f = add(report, "device.node", "device", KC_PROBLEM);
		say(f, "%s exists but no driver answers (%s): cachefiles is not loaded", dev,
		    strerror(err));
		advise(f, "modprobe cachefiles");
		return;
	default:
		f = add(report, "device.node", "device", KC_PROBLEM);
		say(f, "cannot open %s: %s", dev, strerror(err));
		return;
	}
}

/* Can the ublk front end run here? false with the reason and the fix; true with *loaded (the
 * driver serves now) and *known (the config was read). */
static bool ublk_usable(const struct kc_facts *facts, char *why, size_t why_len, char *fix,
			size_t fix_len, bool *loaded, bool *known)
{
	const enum kc_config_value *c = facts->config.values;
	const struct kc_module_facts *m = &facts->ublk_module;

	*loaded = facts->is_running && facts->ublk_control_present;
	*known = facts->config_source[0] != '\0';
	if (facts->version_valid && !kc_version_at_least(&facts->version, 6, 0)) {
		snprintf(why, why_len, "ublk needs Linux 6.0 or later");
		snprintf(fix, fix_len, "run a 6.x kernel (6.12 LTS)");
		return false;
	}
	if (*loaded)
		return true;
	if (!*known)
		return true; /* cannot tell: the caller says so */
	if (!config_on(c[KC_SYM_BLK_DEV_UBLK])) {
		snprintf(why, why_len, "CONFIG_BLK_DEV_UBLK%s: this kernel has no ublk driver",
			 kc_config_value_name(c[KC_SYM_BLK_DEV_UBLK]));
		snprintf(
			fix, fix_len,
			"boot a kernel with CONFIG_BLK_DEV_UBLK=m (Debian's and Ubuntu's have it)");
		return false;
	}
	if (c[KC_SYM_BLKDEV_UBLK_LEGACY_OPCODES] == KC_CONFIG_NO) {
		snprintf(
			why, why_len,
			"CONFIG_BLKDEV_UBLK_LEGACY_OPCODES is not set: blobcached sends the legacy "
			"ublk opcodes (what Debian 12's <linux/ublk_cmd.h> defines)");
		snprintf(fix, fix_len, "boot a kernel with CONFIG_BLKDEV_UBLK_LEGACY_OPCODES=y");
		return false;
	}
	if (c[KC_SYM_IO_URING] == KC_CONFIG_NO) {
		snprintf(why, why_len, "CONFIG_IO_URING is not set: ublk is driven over io_uring");
		snprintf(fix, fix_len, "boot a kernel with CONFIG_IO_URING=y");
		return false;
	}
	if (c[KC_SYM_BLK_DEV_UBLK] == KC_CONFIG_MODULE && m->presence == KC_MODULE_MISSING) {
		snprintf(why, why_len, "ublk_drv is configured as a module but not installed");
		snprintf(fix, fix_len, "install the kernel's modules package (ublk_drv.ko)");
		return false;
	}
	return true;
}

static void evaluate_frontends(const struct kc_facts *facts, struct kc_report *report)
{
	bool ondemand = kc_report_count(report, KC_PROBLEM) == 0, ublk, loaded, known;
	char why[256] = "", fix[256] = "";
	struct kc_finding *f;

	ublk = ublk_usable(facts, why, sizeof(why), fix, sizeof(fix), &loaded, &known);
	if (ondemand) {
		f = add(report, "frontend.ondemand", "front ends", KC_OK);
		say(f, "ondemand: usable (frontend = auto picks it)");
	} else {
		f = add(report, "frontend.ondemand", "front ends", KC_INFO);
		say(f, "ondemand: not usable on this kernel (the problems above)%s",
		    ublk ? "; frontend = auto uses ublk" : "");
	}
	if (!ublk) {
		/* Only a warning: on-demand may serve; when it cannot either, its problems say so.
		 */
		f = add(report, "frontend.ublk", "front ends", KC_WARNING);
		say(f, "ublk: not usable: %s", why);
		advise(f, "%s", fix);
	} else if (loaded) {
		f = add(report, "frontend.ublk", "front ends", KC_OK);
		say(f, "ublk: usable (%s is there)%s", facts->ublk_control_path,
		    ondemand ? "" : "; set [daemon] frontend = ublk or auto");
	} else if (!known) {
		f = add(report, "frontend.ublk", "front ends", KC_INFO);
		say(f, "ublk: cannot tell without the kernel config (needs CONFIG_BLK_DEV_UBLK, "
		       "Linux 6.0+)");
		advise(f, "modprobe ublk_drv, then check that /dev/ublk-control exists");
	} else if (!facts->is_running) {
		f = add(report, "frontend.ublk", "front ends", KC_OK);
		say(f, "ublk: usable (CONFIG_BLK_DEV_UBLK%s)",
		    kc_config_value_name(facts->config.values[KC_SYM_BLK_DEV_UBLK]));
	} else {
		f = add(report, "frontend.ublk", "front ends", ondemand ? KC_OK : KC_INFO);
		say(f, "ublk: usable once ublk_drv is loaded (no %s yet)",
		    facts->ublk_control_path[0] ? facts->ublk_control_path : "/dev/ublk-control");
		advise(f, "modprobe ublk_drv (and list it in /etc/modules-load.d/ to load it at "
			  "boot)");
	}
}

void kc_evaluate(const struct kc_facts *facts, struct kc_report *report)
{
	report->count = 0;
	evaluate_kernel(facts, report);
	evaluate_config(facts, report);
	evaluate_modules(facts, report);
	evaluate_device(facts, report);
	evaluate_frontends(facts, report);
}

enum kc_verdict kc_report_worst(const struct kc_report *report)
{
	enum kc_verdict worst = KC_OK;

	for (size_t i = 0; i < report->count; i++)
		worst = MAX(worst, report->findings[i].verdict);
	return worst;
}

size_t kc_report_count(const struct kc_report *report, enum kc_verdict verdict)
{
	size_t n = 0;

	for (size_t i = 0; i < report->count; i++)
		n += report->findings[i].verdict == verdict;
	return n;
}

const struct kc_finding *kc_report_find(const struct kc_report *report, const char *id)
{
	for (size_t i = 0; i < report->count; i++)
		if (streq(report->findings[i].id, id))
			return &report->findings[i];
	return NULL;
}
