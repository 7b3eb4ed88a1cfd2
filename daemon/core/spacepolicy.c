// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/spacepolicy.h"

#include <inttypes.h>

#include "macros.h"

void space_propagate(struct space_file *files, size_t n_files, struct space_model *models,
		     size_t n_models)
{
	for (size_t m = 0; m < n_models; m++) {
		models[m].last_use = 0;
		models[m].busy = models[m].in_use > 0;
	}
	for (size_t i = 0; i < n_files; i++) {
		struct space_file *f = &files[i];

		f->pinned = false;
		for (size_t o = 0; o < f->n_owners; o++) {
			struct space_model *m = &models[f->owners[o]];

			if (m->pinned)
				f->pinned = true;
			if (f->in_use)
				m->busy = true;
			if (f->present || f->in_use)
				m->last_use = MAX(m->last_use, f->last_use);
		}
	}
}

bool space_file_cullable(const struct space_file *f)
{
	return f->present && !f->pinned && f->in_use == 0;
}

bool space_over_high(uint64_t used, uint64_t total, unsigned high_percent)
{
	/* used/total > high/100, without overflow for any realistic volume */
	return total > 0 && (unsigned __int128)used * 100 > (unsigned __int128)total * high_percent;
}

uint64_t space_bytes_over_low(uint64_t used, uint64_t total, unsigned low_percent)
{
	uint64_t low = (uint64_t)((unsigned __int128)total * low_percent / 100);

	return used > low ? used - low : 0;
}

static const struct space_file *sort_files;

static int lru_compare(const void *a, const void *b)
{
	const struct space_file *x = &sort_files[*(const size_t *)a];
	const struct space_file *y = &sort_files[*(const size_t *)b];
	int c;

	if (x->last_use != y->last_use)
		return x->last_use < y->last_use ? -1 : 1;
	c = strcmp(x->volume, y->volume);
	return c ? c : strcmp(x->key, y->key);
}

static void sort_lru(const struct space_file *files, size_t *order, size_t n)
{
	sort_files = files; /* qsort has no context argument; the policy runs in one thread */
	qsort(order, n, sizeof(*order), lru_compare);
	sort_files = NULL;
}

size_t space_plan_cull(const struct space_file *files, size_t n_files, uint64_t used,
		       uint64_t total, unsigned high_percent, unsigned low_percent, size_t *order)
{
	uint64_t need, freed = 0;
	size_t n = 0, picked = 0;

	if (!space_over_high(used, total, high_percent))
		return 0;
	need = space_bytes_over_low(used, total, low_percent);
	for (size_t i = 0; i < n_files; i++)
		if (space_file_cullable(&files[i]))
			order[n++] = i;
	sort_lru(files, order, n);
	while (picked < n && freed < need)
		freed += files[order[picked++]].bytes;
	return picked;
}

bool space_model_purgeable(const struct space_model *m, int64_t now_ms, int64_t age_ms)
{
	return !m->pinned && !m->busy && m->last_use > 0 && now_ms - m->last_use >= age_ms;
}

size_t space_plan_purge(const struct space_file *files, size_t n_files,
			const struct space_model *models, size_t n_models, int64_t now_ms,
			int64_t age_ms, size_t *order)
{
	size_t n = 0;

	for (size_t i = 0; i < n_files; i++) {
		const struct space_file *f = &files[i];
		bool all = true;

		if (!space_file_cullable(f))
			continue;
		if (f->n_owners == 0) {
			all = now_ms - f->last_use >= age_ms;
		} else {
			for (size_t o = 0; o < f->n_owners && all; o++)
				if (f->owners[o] >= n_models ||
				    !space_model_purgeable(&models[f->owners[o]], now_ms, age_ms))
					all = false;
		}
		if (all)
			order[n++] = i;
	}
	sort_lru(files, order, n);
	return n;
}

/* ---- persisted state ---- */

int space_state_add_record(struct space_state *st, const char *volume, const char *key,
			   int64_t last_use)
{
	struct space_record *t = realloc(st->records, (st->n_records + 1) * sizeof(*t));
	struct space_record *r;

	if (!t)
		return -ENOMEM;
	st->records = t;
	r = &t[st->n_records];
	r->volume = strdup(volume);
	r->key = strdup(key);
	r->last_use = last_use;
	if (!r->volume || !r->key) {
		free(r->volume);
		free(r->key);
		return -ENOMEM;
	}
	st->n_records++;
	return 0;
}

int space_state_add_pin(struct space_state *st, const char *model)
{
	char **t;

	for (size_t i = 0; i < st->n_pins; i++)
		if (streq(st->pins[i], model))
			return 0;
	t = realloc(st->pins, (st->n_pins + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	st->pins = t;
	t[st->n_pins] = strdup(model);
	if (!t[st->n_pins])
		return -ENOMEM;
	st->n_pins++;
	return 0;
}

void space_state_free(struct space_state *st)
{
	for (size_t i = 0; i < st->n_records; i++) {
		free(st->records[i].volume);
		free(st->records[i].key);
	}
	free(st->records);
	for (size_t i = 0; i < st->n_pins; i++)
		free(st->pins[i]);
	free(st->pins);
	memset(st, 0, sizeof(*st));
}

/* A name as found in the file: printable, no spaces, bounded. */
static bool word_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '/')
			return false;
	return true;
}

static int parse_line(char *line, struct space_state *st)
{
	char *save = NULL, *verb, *a, *b, *c, *end;
	long long ms;

	verb = strtok_r(line, " \t", &save);
	if (!verb || verb[0] == '#')
		return 0;
	a = strtok_r(NULL, " \t", &save);
	b = strtok_r(NULL, " \t", &save);
	c = strtok_r(NULL, " \t", &save);
	if (streq(verb, "pin")) {
		if (!a || b || !word_ok(a))
			return -EINVAL;
		return space_state_add_pin(st, a);
	}
	if (streq(verb, "use")) {
		if (!a || !b || !c || strtok_r(NULL, " \t", &save))
			return -EINVAL;
		errno = 0;
		ms = strtoll(a, &end, 10);
		if (errno || *end || end == a || ms <= 0 || !word_ok(b) || !word_ok(c))
			return -EINVAL;
		return space_state_add_record(st, b, c, ms);
	}
	return -EINVAL;
}

int space_state_parse(const char *text, struct space_state *st, unsigned *bad_lines,
		      unsigned *first_bad)
{
	unsigned lineno = 0;

	*bad_lines = 0;
	*first_bad = 0;
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		char *line = strndup(text, len);
		int r;

		if (!line)
			return -ENOMEM;
		lineno++;
		r = parse_line(line, st);
		free(line);
		if (r == -ENOMEM)
			return r;
		if (r < 0 && (*bad_lines)++ == 0)
			*first_bad = lineno;
		text += len + (nl ? 1 : 0);
	}
	return 0;
}

char *space_state_format(const struct space_state *st)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fputs("# blobcached usage records: use UNIX_MS VOLUME KEY; pin MODEL (runtime pins)\n", f);
	for (size_t i = 0; i < st->n_pins; i++)
		fprintf(f, "pin %s\n", st->pins[i]);
	for (size_t i = 0; i < st->n_records; i++)
		fprintf(f, "use %" PRId64 " %s %s\n", st->records[i].last_use,
			st->records[i].volume, st->records[i].key);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
