// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/mountinfo.h"

#include <libmount.h>

#include "macros.h"

/* Is option key present with exactly the value want? want NULL: is it absent? */
static bool option_is(const char *opts, const char *key, const char *want)
{
	char *value = NULL;
	size_t size = 0;

	if (mnt_optstr_get_option(opts, key, &value, &size) != 0 || !value)
		return !want;
	return want && size == strlen(want) && memcmp(value, want, size) == 0;
}

bool erofs_options_match(const char *fs_options, const char *fsid, const char *volume)
{
	if (!fs_options || !option_is(fs_options, "fsid", fsid))
		return false;
	if (!volume)
		return true;
	/* EROFS names the volume "erofs,<domain_id>" in a domain, "erofs,<fsid>" without. */
	return option_is(fs_options, "domain_id", volume) ||
	       (option_is(fs_options, "domain_id", NULL) && streq(fsid, volume));
}

unsigned erofs_mounts_count(const char *fsid, const char *volume, char *where, size_t where_len)
{
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	unsigned n = 0;

	if (where_len)
		where[0] = '\0';
	while (tb && it && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *type = mnt_fs_get_fstype(fs), *target = mnt_fs_get_target(fs);

		if (!type || !streq(type, "erofs") ||
		    !erofs_options_match(mnt_fs_get_fs_options(fs), fsid, volume))
			continue;
		if (n++ == 0 && target && where_len)
			snprintf(where, where_len, "%s", target);
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
	return n;
}

unsigned erofs_mounts_of_device(const char *source, char *where, size_t where_len)
{
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	unsigned n = 0;

	if (where_len)
		where[0] = '\0';
	while (tb && it && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *type = mnt_fs_get_fstype(fs), *target = mnt_fs_get_target(fs);
		const char *src = mnt_fs_get_source(fs);

		if (!type || !streq(type, "erofs") || !src || !streq(src, source))
			continue;
		if (n++ == 0 && target && where_len)
			snprintf(where, where_len, "%s", target);
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
	return n;
}
