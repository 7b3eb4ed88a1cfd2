// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/models.h"

#include <sys/stat.h>

#include "log.h"
#include "macros.h"

struct models {
	char *dir;
	struct timespec mtime;
	bool loaded;
	struct catalogue cat;
};

static int reload(struct models *m, bool force)
{
	struct catalogue fresh = { 0 };
	struct stat st;
	int r;

	if (stat(m->dir, &st) < 0)
		return log_error_errno(errno, "catalogue directory %s", m->dir);
	if (!force && m->loaded && st.st_mtim.tv_sec == m->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == m->mtime.tv_nsec)
		return 0;
	r = catalogue_load_dir(m->dir, &fresh);
	if (r < 0)
		return log_error_errno(r,
				       "cannot read catalogue directory %s; keeping the models "
				       "loaded before",
				       m->dir);
	catalogue_free(&m->cat);
	m->cat = fresh;
	m->mtime = st.st_mtim;
	m->loaded = true;
	log_info("catalogue %s: %zu model(s)", m->dir, m->cat.n_models);
	return 0;
}

int models_new(const char *dir, struct models **out)
{
	struct models *m = calloc(1, sizeof(*m));
	int r;

	if (!m || !(m->dir = strdup(dir))) {
		free(m);
		return -ENOMEM;
	}
	r = reload(m, true);
	if (r < 0) {
		models_free(m);
		return r;
	}
	*out = m;
	return 0;
}

void models_free(struct models *m)
{
	if (!m)
		return;
	catalogue_free(&m->cat);
	free(m->dir);
	free(m);
}

const struct catalogue_blob *models_resolve(struct models *m, const char *key, size_t len,
					    const struct catalogue_model **model_out)
{
	reload(m, false);
	return catalogue_resolve(&m->cat, key, len, model_out);
}

const struct catalogue *models_catalogue(struct models *m)
{
	return &m->cat;
}
