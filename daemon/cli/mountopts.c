// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/mountopts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/ctlclient.h"
#include "macros.h"
#include "names.h"
#include "parse.h"

#define FAIL(...) (snprintf(err, err_len, __VA_ARGS__), -EINVAL)

int mount_args_parse(int argc, char **argv, bool is_umount, struct mount_args *out, char *err,
		     size_t err_len)
{
	const char *operands[2] = { NULL, NULL };
	int n_operands = 0, want = is_umount ? 1 : 2;

	memset(out, 0, sizeof(*out));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || !a[1]) {
			if (n_operands == want)
				return FAIL("unexpected argument '%s'", a);
			operands[n_operands++] = a;
			continue;
		}
		if (streq(a, "--"))
			return FAIL("unexpected argument '--'");
		/* Grouped flags ("-sv"); -o, -t and -N take the next word (or the rest). */
		for (const char *p = a + 1; *p; p++) {
			const char *value = NULL;

			if (*p == 'o' || *p == 't' || *p == 'N') {
				if (p[1])
					value = p + 1;
				else if (i + 1 < argc)
					value = argv[++i];
				else
					return FAIL("option -%c needs a value", *p);
				if (*p == 'o') {
					if (is_umount)
						return FAIL("umount takes no -o");
					out->options = value;
				} else if (*p == 'N') {
					return FAIL(
						"-N (another mount namespace) is not supported: "
						"run the mount in that namespace instead");
				}
				break; /* the value ends this word */
			}
			switch (*p) {
			case 's':
				out->sloppy = true;
				break;
			case 'f':
				if (is_umount)
					out->force = true;
				else
					out->fake = true;
				break;
			case 'n':
				out->no_mtab = true;
				break;
			case 'v':
				out->verbose = true;
				break;
			case 'r': /* mount: read-only (always); umount: remount ro on failure */
				break;
			case 'l':
				if (!is_umount)
					return FAIL("unknown option -l");
				out->lazy = true;
				break;
			case 'd': /* umount: free a loop device (there is none) */
				if (!is_umount)
					return FAIL("unknown option -d");
				break;
			default:
				return FAIL("unknown option -%c", *p);
			}
		}
	}
	if (n_operands != want)
		return is_umount ? FAIL("usage: umount.blobcache DIR")
				 : FAIL("usage: mount.blobcache MODEL DIR [-o OPTIONS]");
	if (is_umount) {
		out->target = operands[0];
	} else {
		out->source = operands[0];
		out->target = operands[1];
	}
	return 0;
}

/* Options that mount(8), fstab or systemd add, and flags the daemon's mount satisfies:
 * accepted, not passed on. */
static bool option_is_ignored(const char *name, size_t len)
{
	static const char *const words[] = {
		"defaults",   "auto",	     "noauto",	      "nofail",	  "_netdev",	"user",
		"nouser",     "users",	     "owner",	      "group",	  "ro",		"rw",
		"nosuid",     "suid",	     "nodev",	      "dev",	  "exec",	"sync",
		"async",      "atime",	     "noatime",	      "relatime", "norelatime", "diratime",
		"nodiratime", "strictatime", "nostrictatime", "lazytime", "nolazytime", "silent",
		"loud",
	};

	if (len >= 2 && strncmp(name, "x-", 2) == 0)
		return true;
	if (len == 7 && strncmp(name, "comment", 7) == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strlen(words[i]) == len && strncmp(words[i], name, len) == 0)
			return true;
	return false;
}

static int add_erofs_option(struct mount_opts *out, const char *opt, size_t len, char *err,
			    size_t err_len)
{
	size_t used = strlen(out->erofs);

	if (used + len + 2 > sizeof(out->erofs))
		return FAIL("EROFS options too long");
	if (used)
		out->erofs[used++] = ',';
	memcpy(out->erofs + used, opt, len);
	out->erofs[used + len] = '\0';
	return 0;
}

int mount_opts_parse(const char *optstr, bool sloppy, struct mount_opts *out, char *err,
		     size_t err_len)
{
	const char *p = optstr ? optstr : "";

	memset(out, 0, sizeof(*out));
	out->timeout_ms = MOUNT_HELPER_DEFAULT_TIMEOUT_MS;
	snprintf(out->run_dir, sizeof(out->run_dir), "%s", CTL_DEFAULT_RUN_DIR);
	while (*p) {
		size_t len = strcspn(p, ","), name_len = strcspn(p, "=,");
		const char *value = name_len < len ? p + name_len + 1 : NULL;
		size_t value_len = value ? len - name_len - 1 : 0;
		char buf[PATH_MAX];
		int r;

		if (len == 0) { /* ",," */
			p++;
			continue;
		}
		if (value_len >= sizeof(buf))
			return FAIL("option '%.*s': value too long", (int)name_len, p);
		if (value) {
			memcpy(buf, value, value_len);
			buf[value_len] = '\0';
		}
#define IS(word) (name_len == strlen(word) && strncmp(p, word, name_len) == 0)
		if (IS("timeout")) {
			uint64_t ms;
			if (!value || parse_duration_ms(buf, &ms) < 0 ||
			    ms > MOUNT_HELPER_MAX_TIMEOUT_MS)
				return FAIL(
					"timeout=%s: give seconds (e.g. timeout=60, 90s, 2m; at "
					"most 1h)",
					value ? buf : "");
			out->timeout_ms = ms;
		} else if (IS("run_dir")) {
			if (!value || buf[0] != '/')
				return FAIL("run_dir=%s: give the daemon's run_dir, an absolute "
					    "path (default " CTL_DEFAULT_RUN_DIR ")",
					    value ? buf : "");
			snprintf(out->run_dir, sizeof(out->run_dir), "%s", buf);
		} else if (IS("fsid")) {
			return FAIL("fsid= is the model name: give the model as the source "
				    "(mount -t blobcache MODEL DIR)");
		} else if (IS("domain_id")) {
			if (!value || !name_is_valid_model(buf, value_len))
				return FAIL("domain_id=%s: give a name of [A-Za-z0-9._-]",
					    value ? buf : "");
			if ((r = add_erofs_option(out, p, len, err, err_len)) < 0)
				return r;
		} else if (IS("device")) {
			if (!value || !name_is_digest(buf, value_len))
				return FAIL("device=%s: give the data blob's sha256 digest (64 "
					    "lower-case hex digits)",
					    value ? buf : "");
			if ((r = add_erofs_option(out, p, len, err, err_len)) < 0)
				return r;
		} else if (option_is_ignored(p, name_len)) {
			/* fstab/systemd/mount(8) words, or satisfied by ro,nosuid,nodev */
		} else if (!sloppy) {
			if (IS("noexec"))
				return FAIL("noexec is not supported: the daemon mounts models "
					    "read-only, nosuid, nodev");
			return FAIL("unknown option '%.*s' (see mount.blobcache(8); -s ignores "
				    "unknown options)",
				    (int)len, p);
		}
#undef IS
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}
