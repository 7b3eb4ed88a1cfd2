// SPDX-License-Identifier: GPL-2.0-or-later
#include "test-erofs-tools.h"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int test_run(char *const argv[])
{
	pid_t pid;
	int status;

	if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return -1;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int test_fsck_extract(const char *meta, const char *const devices[], size_t n_devices,
		      const char *out)
{
	/* fsck.erofs, the devices, --extract, --no-preserve, meta, NULL */
	char **argv = calloc(n_devices + 5, sizeof(*argv));
	size_t k = 1;
	int r = -1;

	if (!argv)
		return -1;
	argv[0] = (char *)FSCK_EROFS_PATH;
	for (size_t i = 0; i < n_devices; i++, k++)
		if (asprintf(&argv[k], "--device=%s", devices[i]) < 0) {
			argv[k] = NULL;
			goto out;
		}
	if (asprintf(&argv[k], "--extract=%s", out) < 0) {
		argv[k] = NULL;
		goto out;
	}
	argv[++k] = (char *)"--no-preserve";
	argv[++k] = (char *)meta;
	r = test_run(argv);
out:
	for (size_t i = 1; i <= n_devices + 1; i++)
		free(argv[i]);
	free(argv);
	return r;
}
