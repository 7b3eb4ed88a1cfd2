// SPDX-License-Identifier: GPL-2.0-or-later
#include "configfile.h"

#include <ini.h>
#include <stdarg.h>
#include <strings.h>
#include <syslog.h>

#include "log.h"
#include "macros.h"
#include "names.h"
#include "parse.h"

enum key_type {
	KEY_STRING,
	KEY_PERCENT,
	KEY_UINT,
	KEY_SIZE,  /* a power of two */
	KEY_BYTES, /* any byte count */
	KEY_DURATION,
	KEY_LOG_LEVEL,
	KEY_BOOL,
	KEY_FRONTEND,
};

struct config_key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	uint64_t min, max; /* KEY_UINT, KEY_PERCENT, KEY_SIZE, KEY_DURATION (ms) */
	const char *help;
};

#define K(sec, nm, ty, field, lo, hi, h)                                                           \
	{                                                                                          \
		sec, nm, ty, offsetof(struct config, field), lo, hi, h                             \
	}

static const struct config_key keys[] = {
	K("cache", "dir", KEY_STRING, cache_dir, 0, 0,
	  "cache directory on the NVMe volume (ext4/XFS)"),
	K("cache", "tag", KEY_STRING, cache_tag, 0, 0, "cachefiles tag"),
	K("cache", "domain", KEY_STRING, domain, 0, 0,
	  "EROFS domain_id of the daemon's on-demand mounts: models share the cache files of "
	  "their common blobs (off: each model a volume of its own)"),
	K("cache", "brun", KEY_PERCENT, brun, 0, 99, "stop culling above this % free blocks"),
	K("cache", "bcull", KEY_PERCENT, bcull, 0, 99, "start culling below this % free blocks"),
	K("cache", "bstop", KEY_PERCENT, bstop, 0, 99, "refuse writes below this % free blocks"),
	K("cache", "frun", KEY_PERCENT, frun, 0, 99, "as brun, for files"),
	K("cache", "fcull", KEY_PERCENT, fcull, 0, 99, "as bcull, for files"),
	K("cache", "fstop", KEY_PERCENT, fstop, 0, 99, "as bstop, for files"),
	K("cache", "allow_root_fs", KEY_BOOL, allow_root_fs, 0, 0,
	  "allow the cache directory on the root filesystem (no dedicated volume)"),
	K("cache", "high_watermark", KEY_PERCENT, high_watermark, 1, 99,
	  "the daemon culls when the volume is fuller than this"),
	K("cache", "low_watermark", KEY_PERCENT, low_watermark, 0, 98,
	  "... least recently used files first, down to this"),
	K("cache", "cull_interval", KEY_DURATION, cull_interval_ms, 100, 3600000,
	  "how often the volume is checked against the watermarks"),
	K("cache", "purge_unused_after", KEY_DURATION, purge_unused_after_ms, 0, 3650ULL * 86400000,
	  "remove the cache files of models unused this long (0: never)"),
	K("cache", "purge_check_every", KEY_DURATION, purge_check_every_ms, 100, 86400000,
	  "how often models are checked for purge_unused_after"),
	K("origin", "path", KEY_STRING, origin_path, 0, 0, "origin directory (e.g. an NFS mount)"),
	K("origin", "url", KEY_STRING, origin_url, 0, 0,
	  "HTTP origin: http(s)://host[:port][/path]"),
	K("origin", "token_file", KEY_STRING, token_file, 0, 0, "HTTP: file with a bearer token"),
	K("origin", "basic_auth_file", KEY_STRING, basic_auth_file, 0, 0,
	  "HTTP: file with user:password"),
	K("origin", "ca_file", KEY_STRING, ca_file, 0, 0, "HTTPS: CA certificates (PEM)"),
	K("origin", "ca_path", KEY_STRING, ca_path, 0, 0, "HTTPS: directory of CA certificates"),
	K("origin", "tls_verify", KEY_BOOL, tls_verify, 0, 0, "HTTPS: verify the server"),
	K("origin", "proxy", KEY_STRING, proxy, 0, 0, "HTTP proxy URL"),
	K("origin", "no_proxy", KEY_STRING, no_proxy, 0, 0, "hosts reached without the proxy"),
	K("origin", "max_connections", KEY_UINT, max_connections, 1, 256,
	  "HTTP connections per host"),
	K("origin", "retries", KEY_UINT, retries, 0, 10, "HTTP retries of a transient failure"),
	K("origin", "nfs", KEY_STRING, origin_nfs, 0, 0,
	  "SERVER:/EXPORT the daemon mounts at path and keeps mounted"),
	K("origin", "nfs_options", KEY_STRING, nfs_options, 0, 0,
	  "NFS mount options (default soft,timeo=30,retrans=2,retry=0)"),
	K("origin", "catalogue", KEY_BOOL, origin_catalogue, 0, 0,
	  "take model entries from the origin's models/ (index) into [daemon] catalogue"),
	K("origin", "catalogue_refresh", KEY_DURATION, catalogue_refresh_ms, 1000, 3600000,
	  "how often the origin's model index is read"),
	K("daemon", "catalogue", KEY_STRING, catalogue_dir, 0, 0, "directory of *.model files"),
	K("daemon", "run_dir", KEY_STRING, run_dir, 0, 0, "runtime directory (status file)"),
	K("daemon", "state_dir", KEY_STRING, state_dir, 0, 0,
	  "verified metadata blobs, so cached models mount without the origin"),
	K("daemon", "workers", KEY_UINT, workers, 1, 256, "origin worker threads"),
	K("daemon", "chunk_size", KEY_SIZE, chunk_size, 4096, 64ULL << 20, "fetch unit"),
	K("daemon", "readahead", KEY_BYTES, readahead, 0, 1ULL << 30,
	  "window fetched ahead of a sequential reader (0: off)"),
	K("daemon", "inflight", KEY_UINT, inflight, 1, 1024,
	  "chunks fetched or written at once (memory: inflight x chunk_size)"),
	K("daemon", "verify_threads", KEY_UINT, verify_threads, 1, 64,
	  "threads verifying chunk digests"),
	K("daemon", "request_timeout", KEY_DURATION, request_timeout_ms, 100, 3600000,
	  "deadline of one READ"),
	K("daemon", "restart_grace", KEY_DURATION, restart_grace_ms, 0, 3600000,
	  "device holder keeps the cache this long for a restarted daemon (0: no holder)"),
	K("daemon", "probe_listen", KEY_STRING, probe_listen, 0, 0,
	  "ADDRESS:PORT of /livez /readyz /metrics (loopback by default), or off"),
	K("daemon", "log_level", KEY_LOG_LEVEL, log_level, 0, 0, "error|warning|notice|info|debug"),
	K("daemon", "frontend", KEY_FRONTEND, frontend, 0, 0,
	  "auto|ondemand|ublk: cachefiles on-demand mode, or ublk block devices"),
};

static const char *const frontends[] = {
	[CONFIG_FRONTEND_AUTO] = "auto",
	[CONFIG_FRONTEND_ONDEMAND] = "ondemand",
	[CONFIG_FRONTEND_UBLK] = "ublk",
};

const char *config_frontend_name(enum config_frontend f)
{
	return (size_t)f < ARRAY_SIZE(frontends) ? frontends[f] : "?";
}

static const char *const log_levels[] = {
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static int set_string(char **field, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

int config_init_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->brun = 10;
	c->bcull = 7;
	c->bstop = 3;
	c->frun = 10;
	c->fcull = 7;
	c->fstop = 3;
	c->high_watermark = 90;
	c->low_watermark = 80;
	c->cull_interval_ms = 10000;
	c->purge_unused_after_ms = 0;
	c->purge_check_every_ms = 3600000;
	c->workers = 8;
	c->chunk_size = 1 << 20;
	c->readahead = 16 << 20;
	c->inflight = 16;
	c->verify_threads = 2;
	c->request_timeout_ms = 30000;
	c->restart_grace_ms = 30000;
	c->catalogue_refresh_ms = 30000;
	c->log_level = LOG_INFO;
	c->tls_verify = true;
	c->max_connections = 8;
	c->retries = 3;
	if (set_string(&c->cache_dir, LOCALSTATEDIR "/cache/blobcached") < 0 ||
	    set_string(&c->cache_tag, "blobcached") < 0 ||
	    set_string(&c->domain, CONFIG_DEFAULT_DOMAIN) < 0 ||
	    set_string(&c->catalogue_dir, LOCALSTATEDIR "/lib/blobcached/catalogue") < 0 ||
	    set_string(&c->run_dir, "/run/blobcached") < 0 ||
	    set_string(&c->state_dir, LOCALSTATEDIR "/lib/blobcached") < 0 ||
	    set_string(&c->probe_listen, "127.0.0.1:9464") < 0) {
		config_free(c);
		return -ENOMEM;
	}
	return 0;
}

struct parse_state {
	struct config *config;
	char *err;
	size_t err_len;
	const char *origin;
	int line;
	bool failed;
};

static int fail(struct parse_state *st, const char *fmt, ...) _printf_(2, 3);
static int fail(struct parse_state *st, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->err_len)
		snprintf(st->err, st->err_len, "%s:%d: %s", st->origin, st->line, msg);
	st->failed = true;
	return 0; /* inih: 0 stops at the first error */
}

static int set_key(struct parse_state *st, const struct config_key *k, const char *value)
{
	void *field = (char *)st->config + k->offset;
	uint64_t v;
	int r;

	switch (k->type) {
	case KEY_STRING:
		if (!*value)
			return fail(st, "[%s] %s must not be empty", k->section, k->name);
		if (set_string(field, value) < 0)
			return fail(st, "out of memory");
		return 1;
	case KEY_PERCENT:
	case KEY_UINT:
		r = parse_uint_range(value, k->min, k->max, &v);
		if (r < 0 || (k->type == KEY_UINT && strchr(value, '%')))
			return fail(
				st, "[%s] %s = '%s': expected a whole number from %llu to %llu%s",
				k->section, k->name, value, (unsigned long long)k->min,
				(unsigned long long)k->max, k->type == KEY_PERCENT ? " (%)" : "");
		*(unsigned *)field = (unsigned)v;
		return 1;
	case KEY_SIZE:
		r = parse_size(value, &v);
		if (r < 0 || v < k->min || v > k->max || (v & (v - 1)))
			return fail(
				st,
				"[%s] %s = '%s': expected a power of two from 4K to 64M (e.g. 1M)",
				k->section, k->name, value);
		*(uint64_t *)field = v;
		return 1;
	case KEY_BYTES:
		r = parse_size(value, &v);
		if (r < 0 || v < k->min || v > k->max)
			return fail(st,
				    "[%s] %s = '%s': expected a size from %llu to %lluM (e.g. 16M)",
				    k->section, k->name, value, (unsigned long long)k->min,
				    (unsigned long long)(k->max >> 20));
		*(uint64_t *)field = v;
		return 1;
	case KEY_DURATION:
		r = parse_duration_ms(value, &v);
		if (r < 0 || v < k->min || v > k->max)
			return fail(st,
				    "[%s] %s = '%s': expected a duration from %s to %s (e.g. 30s)",
				    k->section, k->name, value, k->min ? "100ms" : "0",
				    k->max == 3600000	 ? "1h"
				    : k->max == 86400000 ? "1d"
							 : "3650d");
		*(uint64_t *)field = v;
		return 1;
	case KEY_LOG_LEVEL:
		for (size_t i = 0; i < ARRAY_SIZE(log_levels); i++)
			if (log_levels[i] && streq(value, log_levels[i])) {
				*(int *)field = (int)i;
				return 1;
			}
		return fail(st, "[%s] %s = '%s': expected error, warning, notice, info or debug",
			    k->section, k->name, value);
	case KEY_FRONTEND:
		for (size_t i = 0; i < ARRAY_SIZE(frontends); i++)
			if (streq(value, frontends[i])) {
				*(enum config_frontend *)field = (enum config_frontend)i;
				return 1;
			}
		return fail(st, "[%s] %s = '%s': expected auto, ondemand or ublk", k->section,
			    k->name, value);
	case KEY_BOOL:
		if (parse_bool(value, (bool *)field) < 0)
			return fail(st, "[%s] %s = '%s': expected yes or no", k->section, k->name,
				    value);
		return 1;
	}
	return fail(st, "internal error: key type");
}

const char *config_domain(const struct config *c)
{
	return c->domain && *c->domain && !streq(c->domain, "off") ? c->domain : NULL;
}

void config_model_volume(const struct config *c, const char *name, char *buf, size_t len)
{
	const struct model_conf *mc = config_find_model(c, name);
	const char *opts = mc ? mc->options : NULL;
	const char *dom = opts ? strstr(opts, "domain_id=") : NULL;

	while (dom && dom != opts && dom[-1] != ',') /* a key ending in domain_id= */
		dom = strstr(dom + 1, "domain_id=");
	if (dom) {
		dom += strlen("domain_id=");
		snprintf(buf, len, "erofs,%.*s", (int)strcspn(dom, ","), dom);
	} else if (config_domain(c)) {
		snprintf(buf, len, "erofs,%s", config_domain(c));
	} else {
		snprintf(buf, len, "erofs,%s", name);
	}
}

const struct model_conf *config_find_model(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_models; i++)
		if (streq(c->models[i].name, name))
			return &c->models[i];
	return NULL;
}

/* [model NAME]: found or appended (a later file's section overrides key by key). */
static struct model_conf *model_section(struct parse_state *st, const char *name)
{
	struct config *c = st->config;
	struct model_conf *m;

	for (size_t i = 0; i < c->n_models; i++)
		if (streq(c->models[i].name, name))
			return &c->models[i];
	if (!name_is_valid_model(name, strlen(name)))
		return fail(st,
			    "[model %s]: not a valid model name (letters, digits, '.', '_', '-'; "
			    "at most 64 bytes; the name of its catalogue entry)",
			    name),
		       NULL;
	m = realloc(c->models, (c->n_models + 1) * sizeof(*m));
	if (!m)
		return fail(st, "out of memory"), NULL;
	c->models = m;
	m = &c->models[c->n_models];
	memset(m, 0, sizeof(*m));
	m->name = strdup(name);
	if (!m->name)
		return fail(st, "out of memory"), NULL;
	c->n_models++;
	return m;
}

static int model_key(struct parse_state *st, const char *section, const char *model,
		     const char *name, const char *value)
{
	struct model_conf *m = model_section(st, model);

	if (!m)
		return 0;
	if (streq(name, "mount") || streq(name, "options")) {
		char **field = streq(name, "mount") ? &m->mount : &m->options;
		if (!*value)
			return fail(st, "[%s] %s must not be empty", section, name);
		if (field == &m->mount && value[0] != '/')
			return fail(st, "[%s] mount = '%s': expected an absolute path", section,
				    value);
		if (field == &m->options && (strstr(value, "fsid=") || strchr(value, ' ')))
			return fail(st,
				    "[%s] options = '%s': extra EROFS options without spaces; "
				    "fsid= is the model name and is set by the daemon",
				    section, value);
		if (set_string(field, value) < 0)
			return fail(st, "out of memory");
		return 1;
	}
	if (streq(name, "pin") || streq(name, "preload")) {
		bool *field = streq(name, "pin") ? &m->pin : &m->preload;
		if (parse_bool(value, field) < 0)
			return fail(st, "[%s] %s = '%s': expected yes or no", section, name, value);
		return 1;
	}
	return fail(st, "unknown key '%s' in [%s] (known: mount, options, pin, preload)", name,
		    section);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;

	if (strncmp(section, "model", 5) == 0 && (section[5] == ' ' || section[5] == '\0')) {
		const char *model = section + 5;
		while (*model == ' ')
			model++;
		if (!*model)
			return fail(st, "[model] needs a name: [model NAME]");
		if (!name)
			return model_section(st, model) ? 1 : 0;
		return model_key(st, section, model, name, value);
	}
	if (!name) /* a section header alone (INI_CALL_HANDLER_ON_NEW_SECTION builds) */
		return 1;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (streq(section, keys[i].section) && streq(name, keys[i].name))
			return set_key(st, &keys[i], value);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (streq(section, keys[i].section))
			return fail(st, "unknown key '%s' in [%s] (see blobcached.conf(5))", name,
				    section);
	return fail(st, "unknown section [%s] (known: cache, origin, daemon, model NAME)", section);
}

/* Debian's inih is built without INI_HANDLER_LINENO: count lines in our own reader, which
 * inih calls once per line. */
struct line_reader {
	const char *next;
	struct parse_state *st;
};

static char *read_line(char *str, int num, void *stream)
{
	struct line_reader *lr = stream;
	const char *p = lr->next;
	int n = 0;

	if (!*p)
		return NULL;
	while (n < num - 1 && p[n] && p[n] != '\n')
		n++;
	if (p[n] == '\n' && n < num - 1)
		n++;
	memcpy(str, p, n);
	str[n] = '\0';
	lr->next = p + n;
	lr->st->line++;
	return str;
}

int config_parse_text(struct config *c, const char *text, const char *origin, char *err,
		      size_t err_len)
{
	struct parse_state st = { .config = c, .err = err, .err_len = err_len, .origin = origin };
	struct line_reader lr = { .next = text, .st = &st };
	int r = ini_parse_stream(read_line, &lr, handler, &st);

	if (st.failed)
		return -EINVAL;
	if (r != 0) {
		if (err_len)
			snprintf(err, err_len,
				 "%s:%d: syntax error (expected 'key = value' or [section])",
				 origin, r);
		return -EINVAL;
	}
	return 0;
}

int config_parse_file(struct config *c, const char *path, char *err, size_t err_len)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *text = NULL;
	size_t size = 0;
	FILE *mem;
	char buf[4096];
	size_t n;

	if (!f) {
		int r = -errno;
		snprintf(err, err_len, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	mem = open_memstream(&text, &size);
	if (!mem)
		return -ENOMEM;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, mem);
	if (ferror(f)) {
		fclose(mem);
		snprintf(err, err_len, "%s: read error", path);
		return -EIO;
	}
	if (fclose(mem) != 0 || !text)
		return -ENOMEM;
	if (strlen(text) != size) {
		snprintf(err, err_len, "%s: contains a NUL byte: not a text file", path);
		return -EINVAL;
	}
	return config_parse_text(c, text, path, err, err_len);
}

static bool has_scheme(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return strncasecmp(url, scheme, n) == 0 && url[n] && url[n] != '/';
}

/* The HTTP keys: a URL libcurl may reach (http and https only: never file:// or others),
 * absolute credential and CA paths. */
static int validate_http(const struct config *c, char *err, size_t err_len)
{
	const char *const paths[] = { c->token_file, c->basic_auth_file, c->ca_file, c->ca_path };
	const char *const names[] = { "token_file", "basic_auth_file", "ca_file", "ca_path" };

	if (!has_scheme(c->origin_url, "http://") && !has_scheme(c->origin_url, "https://"))
		return snprintf(err, err_len,
				"[origin] url = '%s': expected http://HOST[:PORT][/PATH] or "
				"https://...",
				c->origin_url),
		       -EINVAL;
	for (const char *p = c->origin_url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
			return snprintf(err, err_len,
					"[origin] url = '%s': no spaces, control bytes, query or "
					"fragment",
					c->origin_url),
			       -EINVAL;
	if (c->token_file && c->basic_auth_file)
		return snprintf(err, err_len,
				"[origin] token_file and basic_auth_file are both set: choose one"),
		       -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (paths[i] && paths[i][0] != '/')
			return snprintf(err, err_len, "[origin] %s must be an absolute path",
					names[i]),
			       -EINVAL;
	return 0;
}

/* Is word one of the comma-separated options (alone, or as word=...)? */
static bool has_option(const char *options, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = options; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, word, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == '='))
			return true;
	return false;
}

int config_validate(const struct config *c, char *err, size_t err_len)
{
	if (!(c->bstop < c->bcull && c->bcull < c->brun))
		return snprintf(err, err_len,
				"[cache] needs bstop < bcull < brun (have %u%% / %u%% / %u%%)",
				c->bstop, c->bcull, c->brun),
		       -EINVAL;
	if (!(c->fstop < c->fcull && c->fcull < c->frun))
		return snprintf(err, err_len,
				"[cache] needs fstop < fcull < frun (have %u%% / %u%% / %u%%)",
				c->fstop, c->fcull, c->frun),
		       -EINVAL;
	/* The daemon must cull before the kernel's limits bite: below bcull free the kernel
	 * considers the cache full, and below bstop it refuses cache writes (READs fail). */
	if (c->low_watermark >= c->high_watermark)
		return snprintf(err, err_len,
				"[cache] needs low_watermark < high_watermark (have %u%% / %u%%)",
				c->low_watermark, c->high_watermark),
		       -EINVAL;
	if (c->high_watermark >= 100 - c->bstop)
		return snprintf(err, err_len,
				"[cache] high_watermark = %u%% leaves no room above the kernel's "
				"bstop "
				"(%u%% free): the kernel would refuse cache writes (readers get "
				"EIO) "
				"before the daemon culls; set high_watermark below %u%% (at most "
				"100%% - bcull = %u%% is best)",
				c->high_watermark, c->bstop, 100 - c->bstop, 100 - c->bcull),
		       -EINVAL;
	if (!c->origin_path && !c->origin_url)
		return snprintf(err, err_len,
				"no origin configured: set [origin] path = DIR (the directory "
				"holding blobs/sha256/) or [origin] url = http(s)://..."),
		       -EINVAL;
	if (c->origin_path && c->origin_url)
		return snprintf(err, err_len,
				"[origin] path and url are both set: choose one origin"),
		       -EINVAL;
	if (c->origin_nfs && !c->origin_path)
		return snprintf(err, err_len,
				"[origin] nfs = %s needs path = DIR: the mount point the daemon "
				"mounts it at",
				c->origin_nfs),
		       -EINVAL;
	if (c->origin_nfs && (!strchr(c->origin_nfs, ':') || strchr(c->origin_nfs, ' ')))
		return snprintf(err, err_len,
				"[origin] nfs = '%s': expected SERVER:/EXPORT (e.g. "
				"nas1:/export/models)",
				c->origin_nfs),
		       -EINVAL;
	if (c->nfs_options && !c->origin_nfs)
		return snprintf(err, err_len,
				"[origin] nfs_options is set without nfs = SERVER:/EXPORT"),
		       -EINVAL;
	if (c->nfs_options &&
	    (strchr(c->nfs_options, ' ') || has_option(c->nfs_options, "fsc") ||
	     has_option(c->nfs_options, "hard") || has_option(c->nfs_options, "rw")))
		return snprintf(err, err_len,
				"[origin] nfs_options = '%s': comma-separated, without spaces; "
				"no fsc (the daemon is the cache), no hard (a dead server "
				"would hang the origin's threads for good) and no rw (the origin "
				"is mounted read-only)",
				c->nfs_options),
		       -EINVAL;
	if (c->origin_url) {
		int r = validate_http(c, err, err_len);
		if (r < 0)
			return r;
	}
	if (c->cache_dir[0] != '/' || (c->origin_path && c->origin_path[0] != '/') ||
	    c->catalogue_dir[0] != '/' || c->state_dir[0] != '/' || c->run_dir[0] != '/')
		return snprintf(err, err_len,
				"[cache] dir, [origin] path, [daemon] catalogue and "
				"run_dir must be absolute paths"),
		       -EINVAL;
	for (size_t i = 0; i < c->n_models; i++)
		for (size_t j = 0; j < i; j++)
			if (c->models[i].mount && c->models[j].mount &&
			    streq(c->models[i].mount, c->models[j].mount))
				return snprintf(err, err_len,
						"[model %s] and [model %s] have the same mount "
						"point %s: one model per mount point",
						c->models[j].name, c->models[i].name,
						c->models[i].mount),
				       -EINVAL;
	if (strchr(c->cache_tag, ' ') || strlen(c->cache_tag) > 32)
		return snprintf(err, err_len,
				"[cache] tag must be at most 32 bytes without spaces"),
		       -EINVAL;
	/* The domain names a cachefiles volume, "erofs,<domain>", as a model name does without
	 * one: the daemon accepts the same names for both. */
	if (!streq(c->domain, "off") && (!name_is_valid_model(c->domain, strlen(c->domain)) ||
					 name_is_digest(c->domain, strlen(c->domain))))
		return snprintf(err, err_len,
				"[cache] domain = '%s': expected off, or a name of 1-%d characters "
				"of A-Z a-z 0-9 . _ - starting with a letter or digit (not a "
				"64-hex digest), e.g. %s",
				c->domain, MODEL_NAME_MAX, CONFIG_DEFAULT_DOMAIN),
		       -EINVAL;
	for (size_t i = 0; i < c->n_models; i++)
		if (streq(c->models[i].name, c->domain))
			return snprintf(err, err_len,
					"[model %s] has the name of [cache] domain: a mount of it "
					"without a domain would take the domain's cache volume; "
					"set [cache] domain to another name",
					c->domain),
			       -EINVAL;
	return 0;
}

void config_print(const struct config *c, FILE *f)
{
	const char *section = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const struct config_key *k = &keys[i];
		const void *field = (const char *)c + k->offset;

		if (!section || !streq(section, k->section)) {
			fprintf(f, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		if (k->type == KEY_STRING && !*(char *const *)field) {
			fprintf(f, "#%s =\t; not set\n", k->name);
			continue;
		}
		fprintf(f, "%s = ", k->name);
		switch (k->type) {
		case KEY_STRING: {
			const char *s = *(char *const *)field;
			fprintf(f, "%s", s);
			break;
		}
		case KEY_PERCENT:
			fprintf(f, "%u%%", *(const unsigned *)field);
			break;
		case KEY_UINT:
			fprintf(f, "%u", *(const unsigned *)field);
			break;
		case KEY_SIZE:
		case KEY_BYTES: {
			uint64_t v = *(const uint64_t *)field;
			if (v == 0)
				fprintf(f, "0");
			else if (v % (1 << 20) == 0)
				fprintf(f, "%lluM", (unsigned long long)(v >> 20));
			else if (v % 1024 == 0)
				fprintf(f, "%lluK", (unsigned long long)(v >> 10));
			else
				fprintf(f, "%llu", (unsigned long long)v);
			break;
		}
		case KEY_DURATION: {
			uint64_t v = *(const uint64_t *)field;
			if (v % 1000 == 0)
				fprintf(f, "%llus", (unsigned long long)(v / 1000));
			else
				fprintf(f, "%llums", (unsigned long long)v);
			break;
		}
		case KEY_LOG_LEVEL:
			fprintf(f, "%s", log_levels[*(const int *)field]);
			break;
		case KEY_BOOL:
			fprintf(f, "%s", *(const bool *)field ? "yes" : "no");
			break;
		case KEY_FRONTEND:
			fprintf(f, "%s",
				config_frontend_name(*(const enum config_frontend *)field));
			break;
		}
		fprintf(f, "\n");
	}
	for (size_t i = 0; i < c->n_models; i++) {
		const struct model_conf *m = &c->models[i];
		fprintf(f, "\n[model %s]\n", m->name);
		if (m->mount)
			fprintf(f, "mount = %s\n", m->mount);
		if (m->options)
			fprintf(f, "options = %s\n", m->options);
		fprintf(f, "pin = %s\n", m->pin ? "yes" : "no");
		fprintf(f, "preload = %s\n", m->preload ? "yes" : "no");
	}
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < c->n_models; i++) {
		free(c->models[i].name);
		free(c->models[i].mount);
		free(c->models[i].options);
	}
	free(c->models);
	c->models = NULL;
	c->n_models = 0;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].type == KEY_STRING) {
			char **field = (char **)((char *)c + keys[i].offset);
			free(*field);
			*field = NULL;
		}
}
