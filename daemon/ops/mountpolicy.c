// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/mountpolicy.h"

#include <libmount.h>

#include "macros.h"
#include "names.h"

int mount_erofs_options(const char *name, const char *extra, const char *domain, char *out,
			size_t len)
{
	char *value = NULL;
	size_t size = 0;
	int n;

	if (extra && *extra && mnt_optstr_get_option(extra, "domain_id", &value, &size) == 0)
		domain = NULL;
	n = snprintf(out, len, "fsid=%s%s%s%s%s", name, extra && *extra ? "," : "",
		     extra ? extra : "", domain ? ",domain_id=" : "", domain ? domain : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Equal paths, ignoring trailing slashes ("/mnt/m/" is "/mnt/m"). */
static bool same_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

static bool fs_option_is(struct libmnt_fs *fs, const char *key, const char *want)
{
	const char *opts = mnt_fs_get_fs_options(fs);
	char *value = NULL;
	size_t size = 0;

	if (!opts || mnt_optstr_get_option(opts, key, &value, &size) != 0 || !value)
		return false;
	return size == strlen(want) && memcmp(value, want, size) == 0;
}

bool mount_table_has_erofs(struct libmnt_table *tb, const char *path, const char *name)
{
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	bool found = false;

	if (!it)
		return false;
	while (!found && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *target = mnt_fs_get_target(fs), *type = mnt_fs_get_fstype(fs);
		found = target && type && streq(type, "erofs") && same_path(target, path) &&
			fs_option_is(fs, "fsid", name);
	}
	mnt_free_iter(it);
	return found;
}

bool mount_table_has_fs(struct libmnt_table *tb, const char *path, const char *fstype,
			const char *source)
{
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	size_t n = strlen(fstype);
	struct libmnt_fs *fs;
	bool found = false;

	if (!it)
		return false;
	while (!found && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *target = mnt_fs_get_target(fs), *type = mnt_fs_get_fstype(fs);
		const char *src = mnt_fs_get_source(fs);
		/* "nfs" matches "nfs4" too: the kernel names NFSv4 mounts so. */
		found = target && type && strncmp(type, fstype, n) == 0 &&
			(type[n] == '\0' || (type[n] >= '0' && type[n] <= '9')) &&
			same_path(target, path) && (!source || (src && same_path(src, source)));
	}
	mnt_free_iter(it);
	return found;
}

bool mount_table_has_anchor(struct libmnt_table *tb, const char *path, bool *shared)
{
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	bool found = false;

	*shared = false;
	if (!it)
		return false;
	while (mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *target = mnt_fs_get_target(fs), *type = mnt_fs_get_fstype(fs);
		const char *fields = mnt_fs_get_optional_fields(fs);

		if (!target || !type || streq(type, "erofs") || !same_path(target, path))
			continue;
		found = true;
		*shared = fields && strstr(fields, "shared:");
	}
	mnt_free_iter(it);
	return found;
}

enum mount_action mount_health_update(struct mount_health *h, enum mount_probe_result r,
				      unsigned threshold)
{
	switch (r) {
	case MOUNT_PROBE_OK:
		h->consecutive_failures = 0;
		return MOUNT_ACTION_NONE;
	case MOUNT_PROBE_MISSING:
		h->consecutive_failures = 0;
		return MOUNT_ACTION_REMOUNT;
	case MOUNT_PROBE_STALE:
		h->consecutive_failures = 0;
		return MOUNT_ACTION_DETACH_REMOUNT;
	case MOUNT_PROBE_FAILED:
	case MOUNT_PROBE_HUNG:
		if (++h->consecutive_failures < threshold)
			return MOUNT_ACTION_NONE;
		h->consecutive_failures = 0;
		return MOUNT_ACTION_DETACH_REMOUNT;
	}
	return MOUNT_ACTION_NONE;
}

uint64_t mount_backoff_ms(unsigned failures)
{
	uint64_t ms = MOUNT_BACKOFF_FIRST_MS;

	if (failures == 0)
		return 0;
	for (unsigned i = 1; i < failures && ms < MOUNT_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return MIN(ms, (uint64_t)MOUNT_BACKOFF_MAX_MS);
}

char *mount_state_format(const struct mount_spec *specs, size_t n)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	fputs("# blobcached: models mounted with 'blobcachectl mount' (rewritten by the daemon)\n",
	      f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "model %s %s%s%s\n", specs[i].name, specs[i].path,
			specs[i].options ? " " : "", specs[i].options ? specs[i].options : "");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

void mount_specs_free(struct mount_spec *specs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(specs[i].name);
		free(specs[i].path);
		free(specs[i].options);
	}
	free(specs);
}

static int parse_line(char *line, struct mount_spec *s, const char **why)
{
	char *save = NULL, *kind = strtok_r(line, " \t", &save);
	char *name = strtok_r(NULL, " \t", &save), *path = strtok_r(NULL, " \t", &save);
	char *options = strtok_r(NULL, " \t", &save);

	if (!kind || !streq(kind, "model") || !name || !path)
		return *why = "expected 'model NAME PATH [OPTIONS]'", -EINVAL;
	if (strtok_r(NULL, " \t", &save))
		return *why = "too many fields (options contain no spaces)", -EINVAL;
	if (!name_is_valid_model(name, strlen(name)))
		return *why = "not a valid model name", -EINVAL;
	if (path[0] != '/')
		return *why = "the mount point must be an absolute path", -EINVAL;
	s->name = strdup(name);
	s->path = strdup(path);
	s->options = options ? strdup(options) : NULL;
	if (!s->name || !s->path || (options && !s->options))
		return -ENOMEM;
	return 0;
}

int mount_state_parse(const char *text, struct mount_spec **out, size_t *n, char *err,
		      size_t err_len)
{
	_cleanup_free_ char *copy = strdup(text);
	struct mount_spec *specs = NULL;
	size_t count = 0;
	unsigned lineno = 0;

	if (!copy)
		return -ENOMEM;
	/* strtok_r skips empty lines: count them by hand. */
	for (char *line = copy, *next; line; line = next) {
		const char *why = NULL;
		struct mount_spec *grown;
		char *p;
		int r;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (!*p || *p == '#')
			continue;
		grown = realloc(specs, (count + 1) * sizeof(*specs));
		if (!grown) {
			mount_specs_free(specs, count);
			return -ENOMEM;
		}
		specs = grown;
		memset(&specs[count], 0, sizeof(specs[count]));
		r = parse_line(p, &specs[count], &why);
		count++;
		if (r < 0) {
			if (why && err_len)
				snprintf(err, err_len, "line %u: %s", lineno, why);
			mount_specs_free(specs, count);
			return r;
		}
		for (size_t i = 0; i + 1 < count; i++)
			if (streq(specs[i].name, specs[count - 1].name) ||
			    same_path(specs[i].path, specs[count - 1].path)) {
				if (err_len)
					snprintf(err, err_len,
						 "line %u: model %s or mount point %s listed twice",
						 lineno, specs[count - 1].name,
						 specs[count - 1].path);
				mount_specs_free(specs, count);
				return -EINVAL;
			}
	}
	*out = specs;
	*n = count;
	return 0;
}
