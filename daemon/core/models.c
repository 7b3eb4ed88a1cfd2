// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/models.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>

#include "io.h"
#include "log.h"
#include "macros.h"
#include "core/mountinfo.h"

/* An in-place blob listed by the catalogue (or by a retained version, with `retained`). */
struct located {
	const struct catalogue_blob *blob;
	size_t seq; /* listing order (cat first): "the first other copy" stays the first listed */
	bool retained;
};

struct models {
	char *dir;
	char *versions_dir; /* state_dir/versions, or NULL */
	char *meta_dir;	    /* state_dir/meta: the fill core's verified metadata copies */
	struct timespec mtime;
	bool loaded;
	struct catalogue cat;
	struct catalogue versions; /* retained copies; models of one name differ by meta */
	bool (*in_use)(void *userdata, const char *name, const char *meta);
	void *in_use_data;
	/* models_locate's index: the in-place blobs of cat, then of versions, sorted by digest.
	 * It points into both, so it is rebuilt whenever either changes (index_rebuild). */
	struct located *located;
	size_t n_located;
};

static int located_cmp(const void *a, const void *b)
{
	const struct located *x = a, *y = b;
	int c = strcmp(x->blob->digest, y->blob->digest);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Count c's in-place blobs into *n; with m->located allocated, store them there too. */
static void located_add(struct models *m, const struct catalogue *c, bool retained, size_t *n)
{
	for (size_t i = 0; i < c->n_models; i++)
		for (size_t j = 0; j < c->models[i].n_blobs; j++) {
			const struct catalogue_blob *x = &c->models[i].blobs[j];

			if (!x->path[0])
				continue;
			if (m->located)
				m->located[*n] = (struct located){ x, *n, retained };
			(*n)++;
		}
}

/* On failure (no memory: logged) the index is empty and models_locate() answers NULL, which
 * keeps every sink reading from the path it was opened with. */
static void index_rebuild(struct models *m)
{
	size_t n = 0;

	free(m->located);
	m->located = NULL;
	m->n_located = 0;
	located_add(m, &m->cat, false, &n);
	located_add(m, &m->versions, true, &n);
	if (!n)
		return;
	m->located = calloc(n, sizeof(*m->located));
	if (!m->located) {
		log_warn_errno(ENOMEM, "cannot index the %zu in-place blobs of the catalogue", n);
		return;
	}
	located_add(m, &m->cat, false, &m->n_located);
	located_add(m, &m->versions, true, &m->n_located);
	qsort(m->located, m->n_located, sizeof(*m->located), located_cmp);
}

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
	index_rebuild(m);
	log_info("catalogue %s: %zu model(s)", m->dir, m->cat.n_models);
	/* An entry replaced by a new version may have left its old one unused. (At start-up
	 * the daemon prunes once its front ends have said what they use.) */
	if (!force)
		models_prune_versions(m);
	return 0;
}

/* Append a deep copy of model to m->versions (format + parse: the one deep copy there is). */
static int versions_add(struct models *m, const struct catalogue_model *model)
{
	_cleanup_free_ char *text = catalogue_format_model(model);
	struct catalogue_model copy;
	struct catalogue_model *t;
	int r;

	if (!text)
		return -ENOMEM;
	r = catalogue_parse_model(text, model->name, &copy, NULL, 0);
	if (r < 0)
		return r;
	t = realloc(m->versions.models, (m->versions.n_models + 1) * sizeof(*t));
	if (!t) {
		catalogue_model_free(&copy);
		return -ENOMEM;
	}
	m->versions.models = t;
	m->versions.models[m->versions.n_models++] = copy;
	return 0;
}

static const struct catalogue_model *version_find(const struct models *m, const char *name,
						  const char *meta)
{
	for (size_t i = 0; i < m->versions.n_models; i++) {
		const struct catalogue_model *v = &m->versions.models[i];
		if (streq(v->name, name) && streq(v->meta, meta))
			return v;
	}
	return NULL;
}

/* Each subdirectory of versions_dir is named by a metadata digest and holds the entries
 * (NAME.model) of the models that had that metadata. */
static void load_versions(struct models *m)
{
	DIR *d = opendir(m->versions_dir);
	struct dirent *de;

	if (!d) {
		if (errno != ENOENT)
			log_warn_errno(errno, "cannot read retained model versions in %s",
				       m->versions_dir);
		return;
	}
	while ((de = readdir(d))) {
		struct catalogue sub = { 0 };
		char path[PATH_MAX];

		if (!name_is_digest(de->d_name, strlen(de->d_name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", m->versions_dir, de->d_name);
		if (catalogue_load_dir(path, &sub) < 0)
			continue;
		for (size_t i = 0; i < sub.n_models; i++)
			if (streq(sub.models[i].meta, de->d_name) &&
			    !version_find(m, sub.models[i].name, sub.models[i].meta))
				versions_add(m, &sub.models[i]);
		catalogue_free(&sub);
	}
	closedir(d);
}

int models_new(const char *dir, const char *state_dir, struct models **out)
{
	struct models *m = calloc(1, sizeof(*m));
	int r;

	if (!m || !(m->dir = strdup(dir))) {
		free(m);
		return -ENOMEM;
	}
	if (state_dir && (asprintf(&m->versions_dir, "%s/versions", state_dir) < 0 ||
			  asprintf(&m->meta_dir, "%s/meta", state_dir) < 0)) {
		m->versions_dir = m->meta_dir = NULL;
		models_free(m);
		return -ENOMEM;
	}
	if (m->versions_dir)
		load_versions(m);
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
	catalogue_free(&m->versions);
	free(m->located);
	free(m->dir);
	free(m->versions_dir);
	free(m->meta_dir);
	free(m);
}

const struct catalogue_blob *models_resolve(struct models *m, const char *key, size_t len,
					    const struct catalogue_model **model_out)
{
	const struct catalogue_blob *b;

	reload(m, false);
	b = catalogue_resolve(&m->cat, key, len, model_out);
	/* A name is always the current version: a re-OPEN of an old one asks for it by digest
	 * (models_find_version). Blobs of a version still mounted are found by digest. */
	if (!b && name_is_digest(key, len))
		b = catalogue_resolve(&m->versions, key, len, model_out);
	return b;
}

const struct catalogue_blob *models_meta_blob(const struct catalogue_model *model)
{
	for (size_t i = 0; i < model->n_blobs; i++)
		if (streq(model->blobs[i].digest, model->meta))
			return &model->blobs[i];
	return NULL;
}

const struct catalogue_blob *models_locate(const struct models *m, const struct catalogue_blob *b)
{
	const struct catalogue_blob *first = NULL;
	bool first_retained = false;
	size_t lo = 0, hi = m->n_located;

	while (lo < hi) { /* the first entry of b's digest */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(m->located[mid].blob->digest, b->digest) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < m->n_located && streq(m->located[i].blob->digest, b->digest); i++) {
		const struct located *l = &m->located[i];

		if (l->blob->size != b->size)
			continue;
		if (first && !first_retained && l->retained)
			break; /* any current copy wins over a retained one */
		if (streq(l->blob->path, b->path))
			return l->blob;
		if (!first) {
			first = l->blob;
			first_retained = l->retained;
		}
	}
	return first;
}

const struct catalogue_model *models_find_version(struct models *m, const char *name,
						  const char *meta)
{
	const struct catalogue_model *cur = catalogue_find_model(&m->cat, name);

	if (cur && streq(cur->meta, meta))
		return cur;
	return version_find(m, name, meta);
}

int models_retain(struct models *m, const struct catalogue_model *model)
{
	char dir[PATH_MAX];
	int r;

	if (!m->versions_dir || version_find(m, model->name, model->meta))
		return 0;
	snprintf(dir, sizeof(dir), "%s/%s", m->versions_dir, model->meta);
	r = mkdir_parents(dir);
	if (r >= 0)
		r = catalogue_write_model(dir, model);
	if (r >= 0)
		r = versions_add(m, model);
	if (r >= 0)
		index_rebuild(m);
	if (r < 0)
		return log_warn_errno(r,
				      "cannot keep version %.12s of model %s in %s: it cannot be "
				      "served after a restart once the model is re-published",
				      model->meta, model->name, dir);
	return 0;
}

void models_set_in_use(struct models *m,
		       bool (*fn)(void *userdata, const char *name, const char *meta),
		       void *userdata)
{
	m->in_use = fn;
	m->in_use_data = userdata;
}

static bool meta_referenced(const struct models *m, const char *meta)
{
	for (size_t i = 0; i < m->cat.n_models; i++)
		if (streq(m->cat.models[i].meta, meta))
			return true;
	for (size_t i = 0; i < m->versions.n_models; i++)
		if (streq(m->versions.models[i].meta, meta))
			return true;
	return false;
}

static bool version_needed(const struct models *m, const struct catalogue_model *v)
{
	const struct catalogue_model *cur = catalogue_find_model(&m->cat, v->name);

	if (cur && streq(cur->meta, v->meta))
		return true;
	/* Any mount of the name keeps all its versions: which one a mount was made with is
	 * the front end's knowledge; keeping a few small entries too long is harmless. */
	if (erofs_mounts_count(v->name, NULL, NULL, 0) > 0)
		return true;
	return m->in_use && m->in_use(m->in_use_data, v->name, v->meta);
}

void models_prune_versions(struct models *m)
{
	size_t before = m->versions.n_models;

	for (size_t i = 0; i < m->versions.n_models;) {
		struct catalogue_model v = m->versions.models[i];
		char path[PATH_MAX];

		if (version_needed(m, &v)) {
			i++;
			continue;
		}
		m->versions.models[i] = m->versions.models[--m->versions.n_models];
		snprintf(path, sizeof(path), "%s/%s/%s.model", m->versions_dir, v.meta, v.name);
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn_errno(errno, "cannot remove %s", path);
		snprintf(path, sizeof(path), "%s/%s", m->versions_dir, v.meta);
		rmdir(path); /* fails while another model name shares this metadata: kept */
		if (!meta_referenced(m, v.meta)) {
			snprintf(path, sizeof(path), "%s/%s", m->meta_dir, v.meta);
			unlink(path);
		}
		log_info("model %s: version %.12s is neither current nor mounted any more; dropped "
			 "it",
			 v.name, v.meta);
		catalogue_model_free(&v);
	}
	if (m->versions.n_models != before)
		index_rebuild(m);
}

const struct catalogue *models_catalogue(struct models *m)
{
	return &m->cat;
}
