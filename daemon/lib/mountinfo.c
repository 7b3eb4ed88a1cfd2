// SPDX-License-Identifier: GPL-2.0-or-later
#include "mountinfo.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macros.h"

unsigned mountinfo_count_erofs(const char *fsid, char *where, size_t where_len)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, want[128];
	size_t cap = 0;
	unsigned n = 0;

	if (where_len)
		where[0] = '\0';
	if (!f)
		return 0;
	snprintf(want, sizeof(want), "fsid=%s", fsid);
	while (getline(&line, &cap, f) > 0) {
		char *sep = strstr(line, " - "), *opts, *tok, *save = NULL, mnt[PATH_MAX];
		char fstype[32], source[PATH_MAX];
		bool match = false;

		if (!sep || sscanf(sep + 3, "%31s %4095s", fstype, source) != 2 ||
		    !streq(fstype, "erofs"))
			continue;
		opts = strrchr(line, ' ');
		if (!opts)
			continue;
		opts[strcspn(opts, "\n")] = '\0';
		for (tok = strtok_r(opts + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (streq(tok, want))
				match = true;
		if (!match)
			continue;
		if (n++ == 0 && sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1)
			snprintf(where, where_len, "%s", mnt);
	}
	free(line);
	return n;
}
