// SPDX-License-Identifier: GPL-2.0-or-later
#include "frontend/ondemand.h"

#include <sys/utsname.h>

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <linux/cachefiles.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <linux/magic.h>

#include "configfile.h"
#include "core/fill.h"
#include "log.h"
#include "core/loop.h"
#include "macros.h"
#include "core/models.h"
#include "core/mountinfo.h"
#include "frontend/msg.h"
#include "frontend/ondemand_records.h"
#include "core/space.h"

#define MAX_OBJECT_ID (1u << 20)
/* The id the kernel gives an object whose fd was closed (CACHEFILES_ONDEMAND_ID_CLOSED). */
#define OBJECT_ID_CLOSED UINT32_MAX

struct object {
	uint32_t id;
	struct ondemand *od;
	struct fill_sink *sink; /* owns the anonymous fd */
	unsigned pending_reads;
	bool closed;
	char *volume, *key;	 /* cachefiles volume key and cookie key: names the cache file */
	struct space_entry *use; /* usage record: in use until the object is freed */
};

struct read_ctx {
	struct object *obj;
	uint32_t msg_id;
};

struct ondemand {
	struct loop *loop;
	struct fill *fill;
	struct models *models;
	int devfd;
	struct object **objects; /* indexed by object id */
	size_t n_objects;
	struct ondemand_stats stats;
	struct space *space; /* usage reports, or NULL */
	bool resumed;	     /* `restore` took over a previous daemon's binding */
	char *cache_dir;     /* cachefiles' directory: cache/I<volume>/@xx/D<key> */
	char *served_dir;    /* state_dir/served: what each name-keyed cache file holds */
};

/* The device takes one command per write(). */
static int dev_command(int devfd, const char *fmt, ...) _printf_(2, 3);
static int dev_command(int devfd, const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -ENAMETOOLONG;
	if (write(devfd, cmd, (size_t)n) < 0)
		return -errno;
	return 0;
}

static void object_free(struct object *obj)
{
	if (obj->od->space)
		space_use_close(obj->od->space, obj->use);
	free(obj->volume);
	free(obj->key);
	fill_sink_close(obj->sink);
	free(obj);
}

static void object_release(struct object *obj)
{
	if (obj->closed && obj->pending_reads == 0)
		object_free(obj);
}

static struct object *object_lookup(struct ondemand *od, uint32_t id)
{
	return id < od->n_objects ? od->objects[id] : NULL;
}

static int object_insert(struct ondemand *od, struct object *obj)
{
	if (obj->id >= MAX_OBJECT_ID)
		return -ERANGE;
	if (obj->id >= od->n_objects) {
		size_t n = MAX((size_t)obj->id + 1, od->n_objects * 2);
		struct object **t = realloc(od->objects, n * sizeof(*t));
		if (!t)
			return -ENOMEM;
		memset(t + od->n_objects, 0, (n - od->n_objects) * sizeof(*t));
		od->objects = t;
		od->n_objects = n;
	}
	if (od->objects[obj->id]) {
		/* An id is only reused after its CLOSE; a second OPEN (after `restore`) replaces
		 * the stale object. */
		struct object *old = od->objects[obj->id];
		log_warn("object %u opened again before its close; dropping the old one", obj->id);
		old->closed = true;
		od->stats.objects--;
		object_release(old);
	}
	od->objects[obj->id] = obj;
	od->stats.objects++;
	return 0;
}

static void copen_reply(struct ondemand *od, uint32_t msg_id, long long size)
{
	int r = dev_command(od->devfd, "copen %u,%lld", msg_id, size);

	if (r < 0)
		log_error_errno(r, "copen %u,%lld rejected by the kernel", msg_id, size);
}

/* Make the object for an answered OPEN and copen it. Takes fd. If `preload` is given (the
 * verified metadata blob, padded to a page multiple; ownership passes), the first READ is served
 * from it. */
static void open_object(struct ondemand *od, uint32_t msg_id, uint32_t object_id, int fd,
			const struct catalogue_blob *blob, const char *model_name, void *preload,
			uint64_t preload_len, const char *volume, const char *key)
{
	struct object *obj;
	int r;

	obj = calloc(1, sizeof(*obj));
	if (!obj) {
		close(fd);
		free(preload);
		return copen_reply(od, msg_id, -ENOMEM);
	}
	obj->id = object_id;
	obj->od = od;
	obj->volume = strdup(volume);
	obj->key = strdup(key);
	if (!obj->volume || !obj->key) {
		close(fd);
		free(obj->volume);
		free(obj->key);
		free(obj);
		free(preload);
		return copen_reply(od, msg_id, -ENOMEM);
	}
	r = fill_sink_new(od->fill, blob, fd, &obj->sink); /* the sink owns fd from here */
	if (r < 0) {
		close(fd);
		free(obj->volume);
		free(obj->key);
		free(obj);
		free(preload);
		return copen_reply(od, msg_id, r);
	}
	r = object_insert(od, obj);
	if (r < 0) {
		object_free(obj);
		free(preload);
		return copen_reply(od, msg_id, r);
	}
	if (od->space)
		obj->use = space_use_open(od->space, volume, strlen(volume), key, strlen(key),
					  fill_sink_fd(obj->sink));
	log_info("OPEN object %u: model %s blob %.12s (%s, %llu bytes)", obj->id, model_name,
		 blob->digest, blob->role == BLOB_ROLE_META ? "meta" : "data",
		 (unsigned long long)blob->size);
	if (preload)
		fill_sink_set_preload(obj->sink, preload, preload_len);
	copen_reply(od, msg_id, (long long)blob->size);
}

struct open_ctx {
	struct ondemand *od;
	uint32_t msg_id, object_id;
	int fd;
	struct catalogue_blob blob;
	char model[MODEL_NAME_MAX + 1];
	char volume[MSG_MAX_SIZE], key[MSG_MAX_SIZE];
	/* A metadata blob asked for by name (the cache file is keyed by a name, not content): */
	bool save_record; /* record what is served before the copen */
	bool discard;	  /* discard the cache file first: it holds another version */
	char old_meta[DIGEST_HEX_LEN + 1]; /* what the record said ("" if none), for the log */
	char cache_path[PATH_MAX];	   /* the cache file, when discard */
};

/* Before the copen of a name-keyed metadata blob: the cache file is discarded if it may hold
 * another version, and what is served is recorded. Returns 0 or -errno (the OPEN is refused:
 * serving with the file's content unknown could show another version's tree). */
static int prepare_name_keyed(struct open_ctx *ctx)
{
	struct ondemand *od = ctx->od;
	struct od_record rec = { .size = ctx->blob.size };
	int r;

	if (ctx->discard) {
		r = od_cache_file_discard(ctx->cache_path);
		if (r < 0 && r != -ENOENT)
			return log_error_errno(
				r,
				"OPEN %u: cannot discard the cache file %s of model "
				"%s, which holds another version; refusing the mount",
				ctx->msg_id, ctx->cache_path, ctx->model);
		if (ctx->old_meta[0])
			log_notice("model %s was re-published (metadata %.12s -> %.12s): its "
				   "cached metadata is discarded",
				   ctx->model, ctx->old_meta, ctx->blob.digest);
		else
			log_notice("model %s: no record of what its cached metadata holds (kept "
				   "by an older blobcached?): discarded, serving metadata %.12s",
				   ctx->model, ctx->blob.digest);
	}
	if (!ctx->save_record)
		return 0;
	snprintf(rec.meta, sizeof(rec.meta), "%s", ctx->blob.digest);
	r = od_record_save(od->served_dir, ctx->volume, ctx->key, &rec);
	if (r >= 0)
		return 0;
	/* A missing record is safe (the next new mount discards the file); a stale one is not. */
	log_warn_errno(r, "OPEN %u: cannot record what the cache file of model %s holds",
		       ctx->msg_id, ctx->model);
	r = od_record_remove(od->served_dir, ctx->volume, ctx->key);
	if (r < 0)
		return log_error_errno(r,
				       "OPEN %u: cannot remove the stale record of model %s; "
				       "refusing the mount",
				       ctx->msg_id, ctx->model);
	return 0;
}

/* Which version to serve for an OPEN of a model's metadata by name, and what to do with the
 * cache file first (ondemand_records.h). *model and *blob may be switched to a retained
 * version: a mount made before the model was re-published, re-opened after a restart. */
static int plan_name_keyed(struct open_ctx *ctx, const char *volume_name,
			   const struct catalogue_model **model, const struct catalogue_blob **blob)
{
	struct ondemand *od = ctx->od;
	const struct catalogue_model *v;
	const struct catalogue_blob *b;
	struct od_record rec;
	bool have_rec, live, exists;
	int r;

	r = od_record_load(od->served_dir, ctx->volume, ctx->key, &rec);
	have_rec = r >= 0;
	if (r < 0 && r != -ENOENT)
		log_warn_errno(r,
			       "OPEN %u: unreadable record of model %s's cache file: treated as "
			       "none",
			       ctx->msg_id, (*model)->name);
	/* The kernel re-opens the objects of live mounts after `restore`; a new mount's OPEN
	 * arrives inside its mount(2), before the mount is attached, and no second mount of one
	 * fsid in one volume can exist: a mount in place means a re-open. */
	live = od->resumed && erofs_mounts_count(ctx->key, volume_name, NULL, 0) > 0;
	exists = od_cache_file_find(od->cache_dir, ctx->volume, ctx->key, ctx->cache_path,
				    sizeof(ctx->cache_path)) == 0;
	switch (od_decide(have_rec ? &rec : NULL, (*model)->meta, live, exists)) {
	case OD_SERVE_RECORDED:
		if (streq(rec.meta, (*model)->meta))
			break;
		v = models_find_version(od->models, (*model)->name, rec.meta);
		b = v ? models_meta_blob(v) : NULL;
		if (!b) {
			log_error("OPEN %u: model %s is mounted with metadata %.12s, re-published "
				  "since as %.12s, and that version is no longer known: refusing "
				  "(remount it to read the new version)",
				  ctx->msg_id, (*model)->name, rec.meta, (*model)->meta);
			return -ENOENT;
		}
		log_notice("OPEN %u: model %s is mounted with metadata %.12s (re-published since "
			   "as %.12s): serving the mounted version until it is unmounted",
			   ctx->msg_id, (*model)->name, rec.meta, (*model)->meta);
		*model = v;
		*blob = b;
		break;
	case OD_SERVE_CURRENT_DISCARD:
		ctx->discard = true;
		snprintf(ctx->old_meta, sizeof(ctx->old_meta), "%s", have_rec ? rec.meta : "");
		ctx->save_record = true;
		break;
	case OD_SERVE_CURRENT:
		ctx->save_record =
			!have_rec || !streq(rec.meta, (*model)->meta) || rec.size != (*blob)->size;
		break;
	}
	return 0;
}

static void open_meta_verified(void *userdata, int result, void *buf, uint64_t len)
{
	struct open_ctx *ctx = userdata;
	struct ondemand *od = ctx->od;

	if (result < 0) {
		od->stats.opens_refused++;
		log_error_errno(result,
				"OPEN %u: metadata blob %.12s of model %s could not be fetched and "
				"verified against its digest; the mount fails",
				ctx->msg_id, ctx->blob.digest, ctx->model);
		close(ctx->fd);
		copen_reply(od, ctx->msg_id, -EIO);
	} else if ((result = prepare_name_keyed(ctx)) < 0) {
		od->stats.opens_refused++;
		close(ctx->fd);
		copen_reply(od, ctx->msg_id, -EIO);
	} else {
		open_object(od, ctx->msg_id, ctx->object_id, ctx->fd, &ctx->blob, ctx->model,
			    TAKE_PTR(buf), len, ctx->volume, ctx->key);
	}
	free(buf);
	catalogue_blob_release(&ctx->blob);
	free(ctx);
}

static void handle_open(struct ondemand *od, const struct msg *m)
{
	_cleanup_close_ int fd = m->open.fd;
	const struct catalogue_model *model = NULL;
	const struct catalogue_blob *blob;
	struct open_ctx *ctx;
	const char *volume;
	size_t volume_len;
	int r;

	od->stats.opens++;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		log_warn_errno(errno, "cannot set close-on-exec on object fd");

	volume = msg_volume_name(m, &volume_len);
	if (!volume || !name_is_valid_model(volume, volume_len)) {
		od->stats.opens_refused++;
		log_warn("OPEN %u: volume key is not 'erofs,<name>' with a valid name; refusing",
			 m->msg_id);
		return copen_reply(od, m->msg_id, -ENOENT);
	}
	if (!(name_is_valid_model(m->open.cookie_key, m->open.cookie_key_len) ||
	      name_is_digest(m->open.cookie_key, m->open.cookie_key_len))) {
		od->stats.opens_refused++;
		log_warn("OPEN %u (volume %.*s): malformed blob name; refusing", m->msg_id,
			 (int)volume_len, volume);
		return copen_reply(od, m->msg_id, -ENOENT);
	}
	blob = models_resolve(od->models, m->open.cookie_key, m->open.cookie_key_len, &model);
	if (!blob) {
		od->stats.opens_refused++;
		log_warn("OPEN %u (volume %.*s): no model or blob named '%.*s' in the catalogue; "
			 "publish it or check the mount's fsid=/device= options",
			 m->msg_id, (int)volume_len, volume, (int)m->open.cookie_key_len,
			 m->open.cookie_key);
		return copen_reply(od, m->msg_id, -ENOENT);
	}

	/* The kernel parses the metadata blob as soon as the OPEN is answered: prove it matches
	 * its digest first. (The cache file cannot be asked: at OPEN time the kernel has not
	 * opened it yet, so lseek on the fd fails. The fill core keeps verified copies instead.) */
	if (blob->role != BLOB_ROLE_META) {
		char v[MSG_MAX_SIZE], k[MSG_MAX_SIZE];
		snprintf(v, sizeof(v), "%.*s", (int)m->open.volume_key_len, m->open.volume_key);
		snprintf(k, sizeof(k), "%.*s", (int)m->open.cookie_key_len, m->open.cookie_key);
		return open_object(od, m->msg_id, m->object_id, TAKE_FD(fd), blob,
				   model ? model->name : "?", NULL, 0, v, k);
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return copen_reply(od, m->msg_id, -ENOMEM);
	ctx->od = od;
	ctx->msg_id = m->msg_id;
	ctx->object_id = m->object_id;
	/* The whole volume key ("erofs,NAME"): it names the cache file's directory. */
	snprintf(ctx->volume, sizeof(ctx->volume), "%.*s", (int)m->open.volume_key_len,
		 m->open.volume_key);
	snprintf(ctx->key, sizeof(ctx->key), "%.*s", (int)m->open.cookie_key_len,
		 m->open.cookie_key);
	if (model && !name_is_digest(m->open.cookie_key, m->open.cookie_key_len)) {
		char vname[MSG_MAX_SIZE];

		snprintf(vname, sizeof(vname), "%.*s", (int)volume_len, volume);
		r = plan_name_keyed(ctx, vname, &model, &blob);
		if (r < 0) {
			od->stats.opens_refused++;
			free(ctx);
			return copen_reply(od, m->msg_id, r);
		}
	}
	/* Kept so that this version can still be served once the model is re-published. */
	if (model)
		models_retain(od->models, model);
	r = catalogue_blob_copy(&ctx->blob, blob);
	if (r < 0) {
		free(ctx);
		return copen_reply(od, m->msg_id, r);
	}
	snprintf(ctx->model, sizeof(ctx->model), "%s", model ? model->name : "?");
	ctx->fd = fd;
	r = fill_fetch_verified_blob(od->fill, &ctx->blob, open_meta_verified, ctx);
	if (r < 0) {
		catalogue_blob_release(&ctx->blob);
		free(ctx);
		log_error_errno(r, "OPEN %u: cannot fetch the metadata blob", m->msg_id);
		return copen_reply(od, m->msg_id, r == -EFBIG ? -EFBIG : -EIO);
	}
	TAKE_FD(fd); /* ctx owns it */
}

static void read_done(void *userdata, int result)
{
	struct read_ctx *ctx = userdata;
	struct object *obj = ctx->obj;
	struct ondemand *od = obj->od;

	if (result < 0) {
		od->stats.reads_failed++;
		space_use_error(obj->use);
		log_warn_errno(result, "READ %u on object %u failed; the reader gets EIO",
			       ctx->msg_id, obj->id);
	}
	/* Completing without having written the range is how a READ fails: the reader gets EIO. */
	if (ioctl(fill_sink_fd(obj->sink), CACHEFILES_IOC_READ_COMPLETE, ctx->msg_id) < 0 &&
	    !obj->closed)
		log_warn_errno(errno, "READ_COMPLETE %u on object %u", ctx->msg_id, obj->id);
	obj->pending_reads--;
	object_release(obj);
	free(ctx);
}

static void handle_read(struct ondemand *od, const struct msg *m)
{
	struct object *obj = object_lookup(od, m->object_id);
	struct read_ctx *ctx;
	int r;

	od->stats.reads++;
	if (!obj) {
		/* No fd to complete it on: the kernel cancels it when the object goes. */
		od->stats.reads_failed++;
		log_error("READ %u for unknown object %u: ignored", m->msg_id, m->object_id);
		return;
	}
	log_debug("READ %u object %u off %llu len %llu", m->msg_id, obj->id,
		  (unsigned long long)m->read.off, (unsigned long long)m->read.len);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		r = -ENOMEM;
		goto fail;
	}
	ctx->obj = obj;
	ctx->msg_id = m->msg_id;
	obj->pending_reads++;
	space_use_touch(obj->use);
	r = fill_read(obj->sink, m->read.off, m->read.len, read_done, ctx);
	if (r >= 0)
		return;
	obj->pending_reads--;
	free(ctx);
fail:
	od->stats.reads_failed++;
	log_warn_errno(r, "READ %u object %u (off %llu len %llu) refused", m->msg_id, obj->id,
		       (unsigned long long)m->read.off, (unsigned long long)m->read.len);
	ioctl(fill_sink_fd(obj->sink), CACHEFILES_IOC_READ_COMPLETE, m->msg_id);
}

static void handle_close(struct ondemand *od, const struct msg *m)
{
	struct object *obj = object_lookup(od, m->object_id);

	od->stats.closes++;
	if (!obj && m->object_id == OBJECT_ID_CLOSED) {
		/* Since Linux 6.8 a CLOSE carries the object's id as it is when the daemon reads
		 * it: one queued before the previous daemon died (its fds went with it, the kernel
		 * then marks the object closed) comes to the next daemon with id -1. The object
		 * has no fd here and nothing to close: the read itself completes the CLOSE. */
		od->stats.closes_stale++;
		log_debug("CLOSE of an object whose fd went with the previous daemon: nothing "
			  "to close");
		return;
	}
	if (!obj) {
		log_warn("CLOSE for unknown object %u", m->object_id);
		return;
	}
	log_debug("CLOSE object %u", obj->id);
	od->objects[obj->id] = NULL;
	od->stats.objects--;
	obj->closed = true;
	object_release(obj); /* freed now, or when its last READ completes */
}

static void on_device(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct ondemand *od = userdata;

	/* Drain: read() returns one message at a time and 0 when nothing is pending. */
	for (int budget = 256; budget > 0; budget--) {
		unsigned char buf[MSG_MAX_SIZE];
		struct msg m;
		ssize_t n = read(fd, buf, sizeof(buf));
		int r;

		if (n == 0)
			return;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_error_errno(errno, "reading /dev/cachefiles failed");
			return;
		}
		r = msg_parse(buf, (size_t)n, &m);
		if (r < 0) {
			od->stats.bad_messages++;
			log_error_errno(r,
					"malformed message from the kernel (%zd bytes, opcode %u)",
					n, m.opcode);
			if (m.opcode == MSG_OPEN && m.open.fd >= 0) {
				close(m.open.fd);
				copen_reply(od, m.msg_id, -EINVAL);
			}
			continue;
		}
		switch (m.opcode) {
		case MSG_OPEN:
			handle_open(od, &m);
			break;
		case MSG_READ:
			handle_read(od, &m);
			break;
		case MSG_CLOSE:
			handle_close(od, &m);
			break;
		}
	}
}

static int check_cache_dir(const char *dir)
{
	struct statfs sfs;

	if (statfs(dir, &sfs) < 0) {
		if (errno == ENOENT)
			return log_error_errno(errno,
					       "cache directory %s does not exist: create it on "
					       "the cache volume (ext4 or XFS) or set [cache] dir",
					       dir);
		return log_error_errno(errno, "cache directory %s", dir);
	}
	switch ((unsigned long)sfs.f_type) {
	case EXT4_SUPER_MAGIC: /* ext2/3/4 share it */
	case XFS_SUPER_MAGIC:
		return 0;
	case TMPFS_MAGIC:
	case RAMFS_MAGIC:
	case OVERLAYFS_SUPER_MAGIC:
	case NFS_SUPER_MAGIC:
		return log_error_errno(
			EOPNOTSUPP,
			"cache directory %s is on a filesystem cachefiles cannot use "
			"(needs xattrs, O_TMPFILE and sync_fs): put it on an ext4 or XFS volume",
			dir);
	default:
		log_warn("cache directory %s is on filesystem type 0x%lx, not ext4 or XFS; trying "
			 "anyway",
			 dir, (unsigned long)sfs.f_type);
		return 0;
	}
}

static int open_device(const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
	case ENXIO:
	case ENODEV:
		return log_error_errno(errno,
				       "cannot open %s: the cachefiles module is not loaded "
				       "(modprobe cachefiles; run blobcache-kcheck to check "
				       "this kernel)",
				       dev);
	case EBUSY:
		return log_error_errno(errno,
				       "cannot open %s: it is in use by another process, "
				       "probably cachefilesd (systemctl stop cachefilesd; "
				       "systemctl disable cachefilesd): only one cache daemon "
				       "can run per host",
				       dev);
	case EPERM:
	case EACCES:
		return log_error_errno(errno, "cannot open %s: needs root (CAP_SYS_ADMIN)", dev);
	default:
		return log_error_errno(errno, "cannot open %s", dev);
	}
}

int ondemand_bind(const char *dev, const struct config *cfg)
{
	_cleanup_close_ int devfd = -EBADF;
	int r;

	r = check_cache_dir(cfg->cache_dir);
	if (r < 0)
		return r;
	devfd = open_device(dev);
	if (devfd < 0)
		return devfd;

	r = dev_command(devfd, "dir %s", cfg->cache_dir);
	if (r < 0)
		return log_error_errno(r, "cachefiles refused 'dir %s'", cfg->cache_dir);
	r = dev_command(devfd, "tag %s", cfg->cache_tag);
	if (r < 0)
		return log_error_errno(r, "cachefiles refused 'tag %s'", cfg->cache_tag);
	/* Set the limits in an order that keeps stop < cull < run true after every write. */
	if ((r = dev_command(devfd, "brun %u%%", cfg->brun)) < 0 ||
	    (r = dev_command(devfd, "bcull %u%%", cfg->bcull)) < 0 ||
	    (r = dev_command(devfd, "bstop %u%%", cfg->bstop)) < 0 ||
	    (r = dev_command(devfd, "frun %u%%", cfg->frun)) < 0 ||
	    (r = dev_command(devfd, "fcull %u%%", cfg->fcull)) < 0 ||
	    (r = dev_command(devfd, "fstop %u%%", cfg->fstop)) < 0)
		return log_error_errno(r, "cachefiles refused the culling limits");
	r = dev_command(devfd, "bind ondemand");
	if (r == -EINVAL)
		return log_error_errno(r, "this kernel has no cachefiles on-demand support "
					  "(CONFIG_CACHEFILES_ONDEMAND is off): build the modules "
					  "with blobcache-build-modules --install, or run "
					  "blobcache-kcheck for details");
	if (r == -EOPNOTSUPP)
		return log_error_errno(r,
				       "cachefiles cannot use %s: put the cache directory on an "
				       "ext4 or XFS volume",
				       cfg->cache_dir);
	if (r == -EBUSY)
		return log_error_errno(r,
				       "cachefiles is already bound to a cache on this device fd");
	if (r < 0)
		return log_error_errno(r, "cachefiles refused 'bind ondemand' (see dmesg)");
	log_info("bound %s in on-demand mode: cache %s, tag %s", dev, cfg->cache_dir,
		 cfg->cache_tag);
	return TAKE_FD(devfd);
}

/* Failover (`restore`) arrived in Linux 6.8. release as in uname(2). */
static bool kernel_has_restore(const char *release)
{
	unsigned major = 0, minor = 0;

	if (sscanf(release, "%u.%u", &major, &minor) != 2)
		return true; /* unknown: let the kernel answer */
	return major > 6 || (major == 6 && minor >= 8);
}

int ondemand_start(struct loop *loop, int devfd, bool restored, const struct config *cfg,
		   struct fill *fill, struct models *models, struct ondemand **out)
{
	struct ondemand *od;
	struct utsname u;
	bool resumed = false;
	int r;

	if (uname(&u) == 0 && !kernel_has_restore(u.release))
		log_warn("Linux %s has no cachefiles failover (`restore` needs 6.8): a restart of "
			 "blobcached breaks the models mounted through it; they must be "
			 "remounted after the restart (managed mounts are remounted by the daemon)",
			 u.release);
	if (restored) {
		/* A previous daemon bound this cache: the kernel re-queues what it had in hand
		 * and re-sends OPEN for objects whose fds went with it. */
		r = dev_command(devfd, "restore");
		if (r == -EOPNOTSUPP)
			log_warn("this kernel has no failover (`restore` needs Linux 6.8): models "
				 "mounted before the restart must be remounted");
		else if (r < 0)
			log_warn_errno(r, "'restore' refused; models mounted before the restart "
					  "may need remounting");
		else
			log_info("resumed the cache from the device holder ('restore' written)");
		resumed = r >= 0;
	}
	od = calloc(1, sizeof(*od));
	if (!od)
		return -ENOMEM;
	od->loop = loop;
	od->fill = fill;
	od->models = models;
	od->devfd = devfd;
	od->resumed = resumed;
	od->cache_dir = strdup(cfg->cache_dir);
	if (!od->cache_dir || asprintf(&od->served_dir, "%s/served", cfg->state_dir) < 0) {
		free(od->cache_dir);
		free(od);
		return -ENOMEM;
	}
	r = loop_add_fd(loop, devfd, EPOLLIN, on_device, od);
	if (r < 0) {
		free(od->served_dir);
		free(od->cache_dir);
		free(od);
		return log_error_errno(r, "cannot watch the cachefiles device");
	}
	*out = od;
	return 0;
}

void ondemand_stop(struct ondemand *od)
{
	if (!od)
		return;
	loop_remove_fd(od->loop, od->devfd);
	for (size_t i = 0; i < od->n_objects; i++)
		if (od->objects[i]) {
			od->objects[i]->closed = true;
			object_release(od->objects[i]);
		}
	free(od->objects);
	free(od->cache_dir);
	free(od->served_dir);
	/* Closing the device withdraws the cache: pending READs fail with EIO in the kernel. */
	close(od->devfd);
	free(od);
}

const struct ondemand_stats *ondemand_get_stats(const struct ondemand *od)
{
	return &od->stats;
}

void ondemand_print_objects(const struct ondemand *od, FILE *f)
{
	for (size_t i = 0; i < od->n_objects; i++) {
		const struct object *obj = od->objects[i];
		const struct catalogue_blob *b;

		if (!obj)
			continue;
		b = fill_sink_blob(obj->sink);
		fprintf(f,
			"object %u blob=%s role=%s size=%llu origin_bytes=%llu pending_reads=%u\n",
			obj->id, b->digest, b->role == BLOB_ROLE_META ? "meta" : "data",
			(unsigned long long)b->size,
			(unsigned long long)fill_sink_origin_bytes(obj->sink), obj->pending_reads);
	}
}

void ondemand_set_space(struct ondemand *od, struct space *sp)
{
	od->space = sp;
}

/* The kernel's `cull NAME` acts in the daemon's current directory: change it (loop thread
 * only; no other code uses relative paths) for the one command, then go back to /. */
static int od_cull(void *userdata, const char *dir, const char *name)
{
	struct ondemand *od = userdata;
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	int r;

	if (dfd < 0)
		return -errno;
	if (fchdir(dfd) < 0)
		return -errno;
	r = dev_command(od->devfd, "cull %s", name);
	if (chdir("/") < 0)
		log_warn_errno(errno, "chdir /");
	return r;
}

static struct fill_sink *od_find_sink(void *userdata, const char *volume, const char *key)
{
	struct ondemand *od = userdata;

	for (size_t i = 0; i < od->n_objects; i++) {
		struct object *obj = od->objects[i];
		if (obj && !obj->closed && streq(obj->volume, volume) && streq(obj->key, key))
			return fill_sink_ref(obj->sink);
	}
	return NULL;
}

const struct space_kernel_ops ondemand_space_ops = {
	.cull = od_cull,
	.find_sink = od_find_sink,
};

bool ondemand_resumed(const struct ondemand *od)
{
	return od->resumed;
}
