/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blobcache-kcheck's decisions, as pure functions over a struct of facts.
 *
 * kcheck.c gathers the facts (uname, kernel config, libkmod, /dev/cachefiles); everything that
 * turns facts into a verdict and a piece of advice lives here, so that unit tests can cover every
 * combination without a kernel.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

enum kc_verdict {
	KC_OK,
	KC_INFO,
	KC_WARNING,
	KC_PROBLEM,
};

/* "ok", "info", "warning", "problem" */
const char *kc_verdict_name(enum kc_verdict verdict);

struct kc_version {
	unsigned int major, minor, patch;
};

/*
 * Parse a kernel release string as printed by `uname -r`: "6.12.117+deb12-cloud-amd64",
 * "5.15.0-1", "7.2.0", "6.8-rc3". The patch level is optional (0 when absent).
 * Returns 0, or -EINVAL when the string does not start with MAJOR.MINOR.
 */
int kc_parse_version(const char *release, struct kc_version *out);
/* true if v >= major.minor (patch level ignored: features arrive in minor releases). */
bool kc_version_at_least(const struct kc_version *v, unsigned int major, unsigned int minor);

/* The value of one kernel config symbol. */
enum kc_config_value {
	KC_CONFIG_ABSENT, /* not mentioned at all: its dependencies are off */
	KC_CONFIG_NO,	  /* "# CONFIG_X is not set" */
	KC_CONFIG_MODULE, /* =m */
	KC_CONFIG_YES,	  /* =y */
};

/* The symbols kcheck looks at. */
enum kc_symbol {
	KC_SYM_MODULES,
	KC_SYM_NETFS_SUPPORT,
	KC_SYM_FSCACHE,
	KC_SYM_CACHEFILES,
	KC_SYM_CACHEFILES_ONDEMAND,
	KC_SYM_EROFS_FS,
	KC_SYM_EROFS_FS_ONDEMAND,
	KC_SYM_BLK_DEV_UBLK,		   /* the ublk front end */
	KC_SYM_BLKDEV_UBLK_LEGACY_OPCODES, /* blobcached sends the legacy opcodes */
	KC_SYM_IO_URING,
	_KC_SYM_COUNT,
};

/* "CONFIG_CACHEFILES" etc. */
const char *kc_symbol_name(enum kc_symbol symbol);
/* "=y", "=m", " is not set", " absent": append to kc_symbol_name() */
const char *kc_config_value_name(enum kc_config_value value);

struct kc_config {
	enum kc_config_value values[_KC_SYM_COUNT];
};

/*
 * Parse the text of a kernel .config (NUL-terminated) and fill in the symbols kcheck knows.
 * Symbols the text does not mention stay KC_CONFIG_ABSENT. Other lines are ignored.
 * Never fails: a .config has no syntax worth rejecting.
 */
void kc_config_parse(const char *text, struct kc_config *out);

/* The modules kcheck looks at. netfs stands for "netfs or fscache" (fscache merged into netfs.ko
 * in 6.8). */
enum kc_module_id {
	KC_MOD_CACHEFILES,
	KC_MOD_EROFS,
	KC_MOD_NETFS,
	_KC_MOD_COUNT,
};

const char *kc_module_name(enum kc_module_id id);

enum kc_module_presence {
	KC_MODULE_UNKNOWN, /* no module directory to look in */
	KC_MODULE_MISSING,
	KC_MODULE_BUILTIN,
	KC_MODULE_FILE,
};

struct kc_module_facts {
	enum kc_module_presence presence;
	bool loaded;
	/* The module file depmod knows (KC_MODULE_FILE), e.g.
	 * /lib/modules/V/kernel/fs/erofs/erofs.ko.xz */
	char path[PATH_MAX];
	/* A file of that name under /lib/modules/V/updates/: an out-of-tree rebuild. */
	char updates_path[PATH_MAX];
};

/* How far `blobcache-kcheck --probe DIR` got with the device. */
enum kc_probe_stage {
	KC_PROBE_NOT_RUN,
	KC_PROBE_DIR,  /* writing "dir DIR" failed */
	KC_PROBE_TAG,  /* writing "tag kcheck" failed */
	KC_PROBE_BIND, /* writing "bind ondemand" failed, or succeeded if probe_error == 0 */
};

struct kc_facts {
	char release[256];
	bool version_valid;
	struct kc_version version;

	/* Where the config came from ("/boot/config-6.12.0"); empty if none was found. */
	char config_source[PATH_MAX];
	/* Why no config could be read: -ENOENT (no file), or the error reading it. */
	int config_error;
	struct kc_config config;

	/* The checked kernel is the one running: module load state and the device mean something.
	 */
	bool is_running;

	/* /lib/modules/V exists. */
	bool module_dir_present;
	char module_dir[PATH_MAX];
	struct kc_module_facts modules[_KC_MOD_COUNT];

	/* /dev/cachefiles */
	char device_path[PATH_MAX];
	bool device_present;
	int device_open_error; /* 0: opened O_RDWR; -errno otherwise */
	enum kc_probe_stage probe_stage;
	int probe_error; /* 0 or -errno of the stage that failed */
	char probe_dir[PATH_MAX];

	/* The ublk front end: ublk_drv (not in modules[]: the on-demand checks do not need it)
	 * and /dev/ublk-control. */
	struct kc_module_facts ublk_module;
	char ublk_control_path[PATH_MAX];
	bool ublk_control_present;
};

/* One line of the report. The strings are owned by the finding. */
struct kc_finding {
	const char
		*id; /* stable key for --json: "kernel.version", "config.cachefiles_ondemand"... */
	const char *section;
	enum kc_verdict verdict;
	char summary[512];
	char fix[512]; /* empty when there is nothing to do */
};

#define KC_MAX_FINDINGS 32

struct kc_report {
	size_t count;
	struct kc_finding findings[KC_MAX_FINDINGS];
};

/* The last section, "front ends", says for each front end whether this kernel can use it:
 * "frontend.ondemand" (ok, or info when it cannot: the findings above say why) and
 * "frontend.ublk" (ok; info when ublk_drv only needs loading or the config is unknown; a warning
 * with the fix when it cannot). */

/* Turn facts into findings, in report order. Never fails; the report is reset first. */
void kc_evaluate(const struct kc_facts *facts, struct kc_report *report);

/* The worst verdict in the report (KC_OK for an empty one). */
enum kc_verdict kc_report_worst(const struct kc_report *report);
/* Count the findings with this verdict. */
size_t kc_report_count(const struct kc_report *report, enum kc_verdict verdict);
/* The finding with this id, or NULL. */
const struct kc_finding *kc_report_find(const struct kc_report *report, const char *id);
