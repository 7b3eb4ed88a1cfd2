/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Daemon configuration: an INI file (inih) parsed into struct config. Each key has a parser and
 * a printer in one table, so --dump-config prints exactly the effective configuration.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_PATH   SYSCONFDIR "/blobcached/blobcached.conf"
#define CONFIG_DEFAULT_DOMAIN "blobcache" /* [cache] domain */

/* A [model NAME] section: what the daemon does with one model of the catalogue. */
struct model_conf {
	char *name;    /* catalogue name (the fsid) */
	char *mount;   /* managed mount point, or NULL: the daemon mounts the model there */
	char *options; /* extra EROFS mount options (e.g. domain_id=...), or NULL */
	bool pin;      /* never culled or purged */
	bool preload;  /* filled in the background as soon as it is in the catalogue */
};

/* [daemon] frontend */
enum config_frontend {
	CONFIG_FRONTEND_AUTO,	  /* on-demand where the kernel has it, else ublk */
	CONFIG_FRONTEND_ONDEMAND, /* cachefiles on-demand mode (/dev/cachefiles) */
	CONFIG_FRONTEND_UBLK,	  /* ublk block devices (/dev/ublk-control) */
};

/* The configuration name of a front end ("auto", "ondemand", "ublk"). */
const char *config_frontend_name(enum config_frontend f);

struct config {
	/* [cache] */
	char *cache_dir;		/* where cachefiles keeps its files: ext4 or XFS */
	char *cache_tag;		/* cachefiles tag */
	char *domain;			/* EROFS domain_id of on-demand mounts, or "off" */
	unsigned brun, bcull, bstop;	/* block culling limits, percent */
	unsigned frun, fcull, fstop;	/* file culling limits, percent */
	unsigned high_watermark;	/* % of the volume used above which the daemon culls */
	unsigned low_watermark;		/* ... down to this */
	uint64_t cull_interval_ms;	/* watermark check period */
	uint64_t purge_unused_after_ms; /* models unused this long are purged; 0: never */
	uint64_t purge_check_every_ms;
	bool allow_root_fs; /* serve a cache on the root filesystem */
	/* [origin] */
	char *origin_path; /* directory holding blobs/sha256/<hex> (file origin) */
	char *origin_url;  /* http(s) base URL serving blobs/sha256/<hex> (HTTP origin) */
	char *token_file;  /* HTTP: bearer token */
	char *basic_auth_file;
	char *ca_file, *ca_path;
	bool tls_verify;
	char *proxy, *no_proxy;
	unsigned max_connections; /* HTTP: per host */
	unsigned retries;	  /* HTTP: attempts after a transient failure */
	char *origin_nfs;	  /* SERVER:/EXPORT the daemon mounts at origin_path, or NULL */
	char *nfs_options;	  /* its mount options; NULL: MOUNT_NFS_DEFAULT_OPTIONS */
	bool origin_catalogue;	  /* the catalogue follows the origin's models/ */
	uint64_t catalogue_refresh_ms;
	/* [daemon] */
	char *catalogue_dir;	 /* *.model files */
	char *run_dir;		 /* status file */
	char *state_dir;	 /* verified metadata blobs (meta/) */
	unsigned workers;	 /* origin worker threads */
	uint64_t chunk_size;	 /* fetch unit, bytes, power of two */
	uint64_t readahead;	 /* bytes fetched ahead of a sequential reader; 0: off */
	unsigned inflight;	 /* chunks fetched or being written at once (memory bound) */
	unsigned verify_threads; /* threads verifying chunks (cache writes: 4 more) */
	uint64_t request_timeout_ms;
	uint64_t restart_grace_ms; /* device holder keeps the cache this long without a daemon */
	char *probe_listen;	   /* ADDRESS:PORT of /livez /readyz /metrics, or "off" */
	int log_level;		   /* syslog level */
	enum config_frontend frontend; /* how the kernel reaches the cache */
	/* [model NAME] sections, in file order */
	struct model_conf *models;
	size_t n_models;
};

/* [cache] domain: the domain_id the daemon's on-demand mounts use unless their options name
 * one, or NULL (off: each model in a volume of its own). */
const char *config_domain(const struct config *c);

/* The cachefiles volume key of model `name` mounted by the daemon in on-demand mode:
 * "erofs,<domain_id>" of its [model] options, else of [cache] domain, else "erofs,<name>". */
void config_model_volume(const struct config *c, const char *name, char *buf, size_t len);

/* The [model NAME] section for name, or NULL. */
const struct model_conf *config_find_model(const struct config *c, const char *name);

/* Fill with the built-in defaults. Returns 0 or -ENOMEM. */
int config_init_defaults(struct config *c);

/*
 * Parse INI text into c (which holds defaults or earlier values: later files override).
 * On error returns -EINVAL and writes "origin:line: message" into err; c may then hold some
 * of the new values, so parse into a scratch copy when the old config must survive.
 */
int config_parse_text(struct config *c, const char *text, const char *origin, char *err,
		      size_t err_len);

/* Read and parse a file. -ENOENT if it is missing (message in err too). */
int config_parse_file(struct config *c, const char *path, char *err, size_t err_len);

/* Cross-key checks (stop < cull < run < 100, ...). -EINVAL with a message in err. */
int config_validate(const struct config *c, char *err, size_t err_len);

/* Print the effective configuration as INI text that parses back to the same values. */
void config_print(const struct config *c, FILE *f);

void config_free(struct config *c);
