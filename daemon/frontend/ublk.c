// SPDX-License-Identifier: GPL-2.0-or-later
#include "frontend/ublk.h"

#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/chunkmap.h"
#include "core/fill.h"
#include "core/loop.h"
#include "core/models.h"
#include "core/space.h"
#include "frontend/ublkplan.h"
#include "io.h"
#include "log.h"
#include "macros.h"
#include "names.h"

#define CTRL_RING_ENTRIES  32
#define QUEUE_RING_ENTRIES (2 * UBLK_QUEUE_DEPTH) /* one SQE per tag at a time, with room */
#define PAGE		   4096u

/* user_data of a queue ring's CQEs: the tag, and what completed. */
#define UD_CMD	      0ull /* FETCH_REQ / COMMIT_AND_FETCH_REQ: a new request (or an abort) */
#define UD_READ	      1ull /* the cache file read of a request */
#define UD(tag, kind) (((uint64_t)(tag) << 1) | (kind))

/* A blob's cache file, shared by every device (of every model) that serves the blob. */
struct ublk_blob {
	struct ublk_blob *next;
	unsigned refs;
	struct fill_sink *sink;	 /* owns the fd and the chunk map */
	struct space_entry *use; /* its usage record, or NULL */
};

enum dev_state {
	DEV_ADDING,   /* ADD_DEV sent */
	DEV_PARAMS,   /* SET_PARAMS sent */
	DEV_STARTING, /* queue fetching, START_DEV sent */
	DEV_LIVE,
	DEV_STOPPING,  /* STOP_DEV sent */
	DEV_RELEASING, /* waiting for requests in hand to finish, then the queue goes */
	DEV_DELETING,  /* DEL_DEV sent */
};

static const char *const dev_state_names[] = {
	[DEV_ADDING] = "adding",     [DEV_PARAMS] = "params",	  [DEV_STARTING] = "starting",
	[DEV_LIVE] = "live",	     [DEV_STOPPING] = "stopping", [DEV_RELEASING] = "releasing",
	[DEV_DELETING] = "deleting",
};

struct ublk_io {
	struct ublk_dev *d;
	uint16_t tag;
	bool busy; /* in the fill core or reading the cache file: the tag is ours */
	void *buf;
	uint64_t off;
	uint32_t len, done;
};

struct ublk_dev {
	struct ublk *u;
	struct ublk_model *model;
	enum dev_state state;
	int id; /* kernel device number, -1 until ADD_DEV answers */
	bool meta;
	bool failed;  /* a step failed: the device is being removed */
	bool started; /* START_DEV succeeded: STOP_DEV is needed */
	struct ublk_blob *blob;
	uint64_t dev_bytes;
	int cdev_fd;
	struct ublksrv_io_desc *iods;
	size_t iods_len;
	struct io_uring ring;
	bool ring_ready, ring_on_loop;
	unsigned busy; /* requests in hand (ios[].busy) */
	struct ublk_io ios[UBLK_QUEUE_DEPTH];
};

enum model_state { MODEL_STARTING, MODEL_LIVE, MODEL_REMOVING };

struct attach_waiter {
	struct attach_waiter *next;
	ublk_attach_done_fn done;
	void *userdata;
};

struct ublk_model {
	struct ublk_model *next;
	struct ublk *u;
	char name[MODEL_NAME_MAX + 1];
	enum model_state state;
	bool detach_requested; /* detach came while starting */
	int error;	       /* first failure while starting */
	size_t n_devs;	       /* devices not yet freed */
	unsigned holds;	       /* callers iterating over devs: the model stays */
	size_t n_total;
	struct ublk_dev **devs; /* [0]: the meta blob, then the data blobs */
	struct attach_waiter *waiters;
	char meta_digest[DIGEST_HEX_LEN + 1]; /* the version its devices serve */
	char source[64];
	char options[1024];
};

/* A control command in flight: the kernel reads the buffers until it answers. */
struct ctrl_op {
	struct ublk_dev *d; /* NULL: stale-device cleanup */
	void (*done)(struct ublk *u, struct ctrl_op *op, int result);
	uint32_t cmd_op;
	int dev_id;
	union {
		struct ublksrv_ctrl_dev_info info;
		struct ublk_params params;
	} buf;
};

struct ublk {
	struct loop *loop;
	struct fill *fill;
	struct models *models;
	char *cache_dir; /* <cache_dir>/ublk */
	char *record_path;
	int ctrl_fd;
	struct io_uring ctrl;
	bool ctrl_ready, ctrl_on_loop;
	struct ublk_model *models_list;
	struct ublk_blob *blobs;
	struct space *space; /* or NULL */
	bool recovery;	     /* devices outlive the daemon (UBLK_F_USER_RECOVERY) */
	struct ublk_stats stats;
};

static void dev_remove(struct ublk_dev *d);
static void model_maybe_free(struct ublk_model *m);
static void dev_release_if_idle(struct ublk_dev *d);
static void model_device_failed(struct ublk_model *m, int err);

/* ---- blobs: cache file + chunk map, one per digest ---- */

static void blob_unref(struct ublk *u, struct ublk_blob *b)
{
	if (!b || --b->refs)
		return;
	for (struct ublk_blob **p = &u->blobs; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	if (u->space)
		space_use_close(u->space, b->use);
	/* Fetches in flight may still hold the sink. The last reference commits what was
	 * written, in the writers pool: an fdatasync here would stall the loop for as long as
	 * the cache volume takes (a hung volume: forever). */
	fill_sink_unref(b->sink);
	free(b);
}

/* Open a cache file O_DIRECT: the verified chunks are written from the fill core's buffers and
 * requests are read into the queue's buffers without a page cache copy of the file, which
 * nobody reads twice (the kernel caches the device's pages above it). A file system without
 * O_DIRECT gets buffered I/O. */
static int open_cache_file(const char *path, int flags)
{
	static bool warned;
	int fd = open(path, flags | O_DIRECT, 0600);

	if (fd >= 0 || errno != EINVAL)
		return fd;
	if (!warned)
		log_info("the cache volume refuses O_DIRECT: cache files use the page cache");
	warned = true;
	return open(path, flags, 0600);
}

static int blob_get(struct ublk *u, const struct catalogue_blob *cb, struct ublk_blob **out)
{
	_cleanup_free_ char *path = NULL, *map_path = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct chunkmap *map = NULL;
	struct ublk_blob *b;
	struct stat st;
	uint64_t size = ublk_plan_dev_bytes(cb->size);
	int r;

	for (b = u->blobs; b; b = b->next)
		if (streq(fill_sink_blob(b->sink)->digest, cb->digest)) {
			b->refs++;
			*out = b;
			return 0;
		}
	if (asprintf(&path, "%s/%s", u->cache_dir, cb->digest) < 0 ||
	    asprintf(&map_path, "%s/%s.map", u->cache_dir, cb->digest) < 0)
		return -ENOMEM;
	fd = open_cache_file(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		/* A new file: a map left without its file (removed by hand) must not claim
		 * chunks of it. */
		if (unlink(map_path) < 0 && errno != ENOENT)
			return log_error_errno(errno, "cannot remove the stale chunk map %s",
					       map_path);
		fd = open_cache_file(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return log_error_errno(errno, "cannot open the cache file %s", path);
	/* Sized as the device: reads past the blob's end (the padding) see zeros. */
	if (fstat(fd, &st) < 0 || ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0))
		return log_error_errno(errno, "cannot size the cache file %s", path);
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	r = fill_sink_new(u->fill, cb, fd, &b->sink);
	if (r < 0) {
		free(b);
		return r;
	}
	TAKE_FD(fd); /* the sink's now */
	r = chunkmap_open(map_path, cb->size, fill_sink_unit(b->sink), &map);
	if (r < 0) {
		fill_sink_unref(b->sink);
		free(b);
		return log_error_errno(r, "cannot open the chunk map %s", map_path);
	}
	fill_sink_set_chunkmap(b->sink, map);
	log_info("blob %.12s: cache file %s, %llu of %llu chunks cached", cb->digest, path,
		 (unsigned long long)chunkmap_count(map), (unsigned long long)chunkmap_size(map));
	b->refs = 1;
	if (u->space)
		b->use = space_use_open(u->space, UBLK_SPACE_VOLUME, strlen(UBLK_SPACE_VOLUME),
					cb->digest, strlen(cb->digest), fill_sink_fd(b->sink));
	b->next = u->blobs;
	u->blobs = b;
	*out = b;
	return 0;
}

/* ---- the device record (run_dir/ublk-devices) ---- */

static void save_records(struct ublk *u)
{
	struct ublk_record *recs;
	size_t n = 0, cap = 0;
	_cleanup_free_ char *text = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -EBADF;

	if (!u->record_path)
		return;
	for (struct ublk_model *m = u->models_list; m; m = m->next)
		cap += m->n_total;
	recs = calloc(cap ? cap : 1, sizeof(*recs));
	if (!recs)
		return;
	for (struct ublk_model *m = u->models_list; m; m = m->next)
		for (size_t i = 0; i < m->n_total; i++) {
			struct ublk_dev *d = m->devs[i];
			if (!d || d->id < 0)
				continue;
			recs[n].dev_id = d->id;
			snprintf(recs[n].model, sizeof(recs[n].model), "%s", m->name);
			snprintf(recs[n].digest, sizeof(recs[n].digest), "%s",
				 fill_sink_blob(d->blob->sink)->digest);
			recs[n].meta = d->meta;
			n++;
		}
	text = ublk_records_format(recs, n);
	free(recs);
	if (!text || asprintf(&tmp, "%s.tmp", u->record_path) < 0)
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    rename(tmp, u->record_path) < 0) {
		log_warn_errno(errno, "cannot write %s", u->record_path);
		unlink(tmp);
	}
}

/* ---- the control ring ---- */

static void ctrl_flush(struct ublk *u)
{
	int r = io_uring_submit(&u->ctrl);

	if (r < 0)
		log_error_errno(r, "ublk: submitting control commands failed");
}

/* Send a control command; op->done runs in the loop thread with the kernel's answer. */
static int ctrl_send(struct ublk *u, struct ctrl_op *op, void *addr, uint16_t len, uint64_t data0)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ctrl);
	struct ublksrv_ctrl_cmd *cmd;

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, 2 * sizeof(*sqe)); /* SQE128 */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = u->ctrl_fd;
	/* Legacy opcodes: the 6.1 UAPI header has no ioctl-encoded ones; 6.12 takes both
	 * (CONFIG_BLKDEV_UBLK_LEGACY_OPCODES, on in Debian's kernels). */
	sqe->cmd_op = op->cmd_op;
	sqe->user_data = (uint64_t)(uintptr_t)op;
	cmd = (struct ublksrv_ctrl_cmd *)sqe->cmd;
	cmd->dev_id = (uint32_t)op->dev_id;
	cmd->queue_id = (uint16_t)-1;
	cmd->addr = (uint64_t)(uintptr_t)addr;
	cmd->len = len;
	cmd->data[0] = data0;
	ctrl_flush(u);
	return 0;
}

static int ctrl_command(struct ublk *u, struct ublk_dev *d, uint32_t cmd_op, int dev_id,
			void (*done)(struct ublk *, struct ctrl_op *, int), bool with_info,
			bool with_params, uint64_t data0)
{
	struct ctrl_op *op = calloc(1, sizeof(*op));
	void *addr = NULL;
	uint16_t len = 0;
	int r;

	if (!op)
		return -ENOMEM;
	op->d = d;
	op->done = done;
	op->cmd_op = cmd_op;
	op->dev_id = dev_id;
	if (with_info) {
		ublk_plan_dev_info(&op->buf.info, (int)getpid(), u->recovery);
		addr = &op->buf.info;
		len = sizeof(op->buf.info);
	} else if (with_params) {
		r = ublk_plan_params(fill_sink_blob(d->blob->sink)->size, &op->buf.params);
		if (r < 0) {
			free(op);
			return r;
		}
		addr = &op->buf.params;
		len = sizeof(op->buf.params);
	}
	r = ctrl_send(u, op, addr, len, data0);
	if (r < 0)
		free(op);
	return r;
}

static void on_ctrl(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct ublk *u = userdata;
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&u->ctrl, &cqe) == 0) {
		struct ctrl_op *op = (struct ctrl_op *)(uintptr_t)cqe->user_data;
		int res = cqe->res;

		io_uring_cqe_seen(&u->ctrl, cqe);
		op->done(u, op, res);
		free(op);
	}
}

/* ---- the queue of a device ---- */

static void queue_flush(struct ublk_dev *d)
{
	int r = io_uring_submit(&d->ring);

	if (r < 0)
		log_error_errno(r, "ublk%d: submitting to the queue failed", d->id);
}

/* FETCH_REQ (first time) or COMMIT_AND_FETCH_REQ with result: the tag goes back to the kernel,
 * which sends its next request on the same command. */
static void queue_io_cmd(struct ublk_dev *d, struct ublk_io *io, uint32_t cmd_op, int result)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
	struct ublksrv_io_cmd *cmd;

	if (!sqe) { /* cannot happen: one SQE per tag at a time and twice the room */
		log_error("ublk%d: queue ring full; tag %u lost", d->id, io->tag);
		return;
	}
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = d->cdev_fd;
	sqe->cmd_op = cmd_op;
	sqe->user_data = UD(io->tag, UD_CMD);
	cmd = (struct ublksrv_io_cmd *)sqe->cmd;
	cmd->q_id = 0;
	cmd->tag = io->tag;
	cmd->result = result;
	cmd->addr = (uint64_t)(uintptr_t)io->buf;
}

/* Answer a request (bytes read, or -errno) and hand its tag back for the next one. Frees
 * nothing: the callers release a stopped device once they are done with it. */
static void io_complete(struct ublk_dev *d, struct ublk_io *io, int result)
{
	if (result < 0) {
		d->u->stats.reads_failed++;
		log_debug("ublk%d: request %llu+%u failed: %s", d->id, (unsigned long long)io->off,
			  io->len, strerror(-result));
	}
	if (io->busy) {
		io->busy = false;
		d->busy--;
	}
	if (d->ring_ready)
		queue_io_cmd(d, io, UBLK_IO_COMMIT_AND_FETCH_REQ, result);
}

/* Read what is left of the request from the cache file, through the ring. */
static void io_read_file(struct ublk_dev *d, struct ublk_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);

	if (!sqe)
		return io_complete(d, io, -EIO);
	io_uring_prep_read(sqe, fill_sink_fd(d->blob->sink), (char *)io->buf + io->done,
			   io->len - io->done, io->off + io->done);
	sqe->user_data = UD(io->tag, UD_READ);
}

static void io_filled(void *userdata, int result)
{
	struct ublk_io *io = userdata;
	struct ublk_dev *d = io->d;

	if (result < 0)
		io_complete(d, io, -EIO); /* the deadline, a corrupt chunk, the origin: EIO */
	else
		io_read_file(d, io);
	queue_flush(d);
	dev_release_if_idle(d); /* last: it may free d */
}

static void io_start(struct ublk_dev *d, struct ublk_io *io)
{
	struct ublk *u = d->u;
	const struct ublksrv_io_desc *iod = &d->iods[io->tag];
	enum ublk_io_action a;
	uint64_t off = 0;
	uint32_t len = 0;
	int err = 0, r;

	io->busy = true;
	d->busy++;
	a = ublk_plan_io(iod, d->dev_bytes, &off, &len, &err);
	if (a == UBLK_IO_ACTION_SUCCEED)
		return io_complete(d, io, 0);
	if (a == UBLK_IO_ACTION_FAIL)
		return io_complete(d, io, err);
	io->off = off;
	io->len = len;
	io->done = 0;
	u->stats.reads++;
	space_use_touch(d->blob->use);
	if (fill_range_cached(d->blob->sink, off, len)) {
		u->stats.reads_cached++;
		return io_read_file(d, io);
	}
	/* While START_DEV runs, the reads are the kernel's partition scan, not a reader's. */
	if (d->state == DEV_STARTING)
		r = fill_read_no_readahead(d->blob->sink, off, len, io_filled, io);
	else
		r = fill_read(d->blob->sink, off, len, io_filled, io);
	if (r < 0)
		io_complete(d, io, r);
}

static void io_read_done(struct ublk_dev *d, struct ublk_io *io, int res)
{
	if (res < 0) {
		log_warn_errno(res, "ublk%d: reading the cache file at %llu failed", d->id,
			       (unsigned long long)(io->off + io->done));
		return io_complete(d, io, -EIO);
	}
	if (res == 0) /* the file is sized as the device: cannot end early */
		return io_complete(d, io, -EIO);
	io->done += (uint32_t)res;
	if (io->done < io->len)
		return io_read_file(d, io);
	d->u->stats.bytes_read += io->len;
	io_complete(d, io, (int)io->len);
}

static void on_queue(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct ublk_dev *d = userdata;
	struct io_uring_cqe *cqe;

	while (d->ring_ready && io_uring_peek_cqe(&d->ring, &cqe) == 0) {
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		struct ublk_io *io;

		io_uring_cqe_seen(&d->ring, cqe);
		if ((ud >> 1) >= UBLK_QUEUE_DEPTH)
			continue;
		io = &d->ios[ud >> 1];
		if ((ud & 1) == UD_READ) {
			io_read_done(d, io, res);
			continue;
		}
		if (res == UBLK_IO_RES_OK) {
			io_start(d, io);
		} else {
			/* UBLK_IO_RES_ABORT: the device stops, the tag is not coming back. */
			if (res != UBLK_IO_RES_ABORT)
				log_warn_errno(res,
					       "ublk%d: tag %u: the kernel refused the command",
					       d->id, io->tag);
		}
	}
	if (d->ring_ready)
		queue_flush(d);
	dev_release_if_idle(d); /* last: it may free d */
}

static void queue_close(struct ublk_dev *d)
{
	if (d->ring_on_loop)
		loop_remove_fd(d->u->loop, d->ring.ring_fd);
	d->ring_on_loop = false;
	if (d->ring_ready)
		io_uring_queue_exit(&d->ring); /* cancels the fetches still with the kernel */
	d->ring_ready = false;
	if (d->iods)
		munmap(d->iods, d->iods_len);
	d->iods = NULL;
	for (unsigned i = 0; i < UBLK_QUEUE_DEPTH; i++) {
		free(d->ios[i].buf);
		d->ios[i].buf = NULL;
	}
	if (d->cdev_fd >= 0)
		close(d->cdev_fd);
	d->cdev_fd = -EBADF;
}

/* Open /dev/ublkcN, map its descriptors, and give the kernel every tag (FETCH_REQ): START_DEV
 * waits for all of them. */
static int queue_open(struct ublk_dev *d)
{
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/dev/ublkc%d", d->id);
	d->cdev_fd = open(path, O_RDWR | O_CLOEXEC);
	if (d->cdev_fd < 0)
		return log_error_errno(errno, "cannot open %s", path);
	d->iods_len = ALIGN_UP(UBLK_QUEUE_DEPTH * sizeof(struct ublksrv_io_desc), PAGE);
	d->iods = mmap(NULL, d->iods_len, PROT_READ, MAP_SHARED | MAP_POPULATE, d->cdev_fd,
		       UBLKSRV_CMD_BUF_OFFSET);
	if (d->iods == MAP_FAILED) {
		d->iods = NULL;
		return log_error_errno(errno, "cannot map the request descriptors of %s", path);
	}
	r = io_uring_queue_init(QUEUE_RING_ENTRIES, &d->ring, IORING_SETUP_SQE128);
	if (r < 0)
		return log_error_errno(r, "cannot make the io_uring of %s", path);
	d->ring_ready = true;
	for (unsigned i = 0; i < UBLK_QUEUE_DEPTH; i++) {
		struct ublk_io *io = &d->ios[i];
		io->d = d;
		io->tag = (uint16_t)i;
		if (posix_memalign(&io->buf, PAGE, UBLK_IO_BUF_BYTES) != 0) {
			io->buf = NULL;
			return -ENOMEM;
		}
		queue_io_cmd(d, io, UBLK_IO_FETCH_REQ, -1);
	}
	r = io_uring_submit(&d->ring);
	if (r < 0)
		return log_error_errno(r, "cannot queue the fetches of %s", path);
	r = loop_add_fd(d->u->loop, d->ring.ring_fd, EPOLLIN, on_queue, d);
	if (r < 0)
		return r;
	d->ring_on_loop = true;
	return 0;
}

/* ---- device life ---- */

/* The last device is gone (and nobody iterates): the model goes, failing its waiters. */
static void model_maybe_free(struct ublk_model *m)
{
	struct ublk *u = m->u;

	if (m->n_devs || m->holds)
		return;
	for (struct ublk_model **p = &u->models_list; *p; p = &(*p)->next)
		if (*p == m) {
			*p = m->next;
			break;
		}
	if (m->state == MODEL_REMOVING && !m->error)
		log_info("model %s: block devices removed", m->name);
	while (m->waiters) {
		struct attach_waiter *w = m->waiters;
		m->waiters = w->next;
		w->done(w->userdata, m->error ? m->error : -ENODEV, "", "");
		free(w);
	}
	free(m->devs);
	free(m);
}

static void dev_free(struct ublk_dev *d)
{
	struct ublk_model *m = d->model;
	struct ublk *u = d->u;

	queue_close(d);
	blob_unref(u, d->blob);
	for (size_t i = 0; i < m->n_total; i++)
		if (m->devs[i] == d)
			m->devs[i] = NULL;
	free(d);
	m->n_devs--;
	save_records(u);
	model_maybe_free(m);
}

static void on_deleted(struct ublk *u, struct ctrl_op *op, int res)
{
	struct ublk_dev *d = op->d;

	if (res < 0) {
		u->stats.device_errors++;
		log_error_errno(res, "ublk: DEL_DEV of device %d failed", d->id);
	} else {
		u->stats.devices_removed++;
		log_info("ublk: device %d deleted", d->id);
	}
	dev_free(d);
}

/* After STOP_DEV (or a failed start): once no request is in hand, the queue goes, then the
 * device. */
static void dev_release_if_idle(struct ublk_dev *d)
{
	int r;

	if (d->state != DEV_RELEASING || d->busy)
		return;
	queue_close(d); /* DEL_DEV waits for the char device to be closed */
	if (d->id < 0)
		return dev_free(d);
	d->state = DEV_DELETING;
	r = ctrl_command(d->u, d, UBLK_CMD_DEL_DEV, d->id, on_deleted, false, false, 0);
	if (r < 0) {
		log_error_errno(r, "ublk: cannot delete device %d", d->id);
		dev_free(d);
	}
}

static void on_stopped(struct ublk *u, struct ctrl_op *op, int res)
{
	struct ublk_dev *d = op->d;

	if (res < 0)
		log_warn_errno(res, "ublk: STOP_DEV of device %d failed", d->id);
	if (u->stats.devices && d->started)
		u->stats.devices--;
	d->started = false;
	d->state = DEV_RELEASING;
	dev_release_if_idle(d);
}

static void dev_remove(struct ublk_dev *d)
{
	int r;

	if (d->state >= DEV_STOPPING)
		return;
	if (d->state == DEV_ADDING || d->state == DEV_PARAMS || d->state == DEV_STARTING) {
		/* A command of the start is with the kernel: its answer continues the removal. */
		d->failed = true;
		return;
	}
	d->state = DEV_STOPPING;
	if (d->started) {
		r = ctrl_command(d->u, d, UBLK_CMD_STOP_DEV, d->id, on_stopped, false, false, 0);
		if (r >= 0)
			return;
		log_error_errno(r, "ublk: cannot stop device %d", d->id);
	}
	d->state = DEV_RELEASING;
	dev_release_if_idle(d);
}

static void model_check_live(struct ublk_model *m)
{
	int meta = -1, data[64];
	size_t n = 0;
	int r;

	for (size_t i = 0; i < m->n_total; i++)
		if (!m->devs[i] || m->devs[i]->state != DEV_LIVE)
			return;
	for (size_t i = 0; i < m->n_total; i++) {
		if (m->devs[i]->meta)
			meta = m->devs[i]->id;
		else if (n < ARRAY_SIZE(data))
			data[n++] = m->devs[i]->id;
	}
	r = ublk_plan_mount(meta, data, n, NULL, m->source, sizeof(m->source), m->options,
			    sizeof(m->options));
	if (r < 0)
		return model_device_failed(m, r);
	m->state = MODEL_LIVE;
	log_info("model %s: block devices ready: %s %s", m->name, m->source, m->options);
	while (m->waiters) {
		struct attach_waiter *w = m->waiters;
		m->waiters = w->next;
		w->done(w->userdata, 0, m->source, m->options);
		free(w);
	}
	if (m->detach_requested)
		ublk_detach_model(m->u, m->name);
}

/* A device of a starting model failed: the model fails, all its devices go. */
static void model_device_failed(struct ublk_model *m, int err)
{
	if (!m->error)
		m->error = err;
	m->state = MODEL_REMOVING;
	m->holds++;
	for (size_t i = 0; i < m->n_total; i++)
		if (m->devs[i])
			dev_remove(m->devs[i]);
	m->holds--;
	model_maybe_free(m);
}

static void dev_step_failed(struct ublk_dev *d, int err, const char *what)
{
	struct ublk_model *m = d->model;

	d->u->stats.device_errors++;
	log_error_errno(err, "model %s: ublk device %d: %s failed", m->name, d->id, what);
	d->failed = false;
	/* Started: dev_remove stops it. Not: nothing of it runs, it can go now. */
	d->state = d->started ? DEV_LIVE : DEV_RELEASING;
	m->holds++;
	model_device_failed(m, err);
	if (d->state == DEV_RELEASING)
		dev_release_if_idle(d);
	m->holds--;
	model_maybe_free(m);
}

static void on_started(struct ublk *u, struct ctrl_op *op, int res)
{
	struct ublk_dev *d = op->d;

	if (res < 0)
		return dev_step_failed(d, res, "START_DEV");
	d->started = true;
	d->state = DEV_LIVE;
	u->stats.devices++;
	log_info("model %s: /dev/ublkb%d serves blob %.12s (%s, %llu bytes)", d->model->name, d->id,
		 fill_sink_blob(d->blob->sink)->digest, d->meta ? "meta" : "data",
		 (unsigned long long)fill_sink_blob(d->blob->sink)->size);
	if (d->failed || d->model->state == MODEL_REMOVING) {
		d->failed = false;
		return dev_remove(d);
	}
	model_check_live(d->model);
}

static void on_params(struct ublk *u, struct ctrl_op *op, int res)
{
	struct ublk_dev *d = op->d;
	int r;

	if (res < 0)
		return dev_step_failed(d, res, "SET_PARAMS");
	if (d->failed)
		return dev_step_failed(d, -ECANCELED, "start");
	r = queue_open(d);
	if (r < 0)
		return dev_step_failed(d, r, "queue setup");
	d->state = DEV_STARTING;
	/* The kernel runs START_DEV in an io_uring worker (it refuses the non-blocking
	 * attempt): the partition scan of the new disk reads it while the loop serves. */
	r = ctrl_command(u, d, UBLK_CMD_START_DEV, d->id, on_started, false, false,
			 (uint64_t)getpid());
	if (r < 0)
		dev_step_failed(d, r, "START_DEV");
}

static void on_added(struct ublk *u, struct ctrl_op *op, int res)
{
	struct ublk_dev *d = op->d;
	int r;

	if (res < 0)
		return dev_step_failed(d, res, "ADD_DEV");
	d->id = (int)op->buf.info.dev_id;
	u->stats.devices_added++;
	save_records(u);
	if (d->failed)
		return dev_step_failed(d, -ECANCELED, "start");
	d->state = DEV_PARAMS;
	r = ctrl_command(u, d, UBLK_CMD_SET_PARAMS, d->id, on_params, false, true, 0);
	if (r < 0)
		dev_step_failed(d, r, "SET_PARAMS");
}

static int dev_new(struct ublk_model *m, const struct catalogue_blob *cb, struct ublk_dev **out)
{
	struct ublk *u = m->u;
	struct ublk_dev *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->u = u;
	d->model = m;
	d->id = -1;
	d->cdev_fd = -EBADF;
	d->meta = cb->role == BLOB_ROLE_META;
	d->dev_bytes = ublk_plan_dev_bytes(cb->size);
	r = blob_get(u, cb, &d->blob);
	if (r < 0) {
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

/* ---- models ---- */

static struct ublk_model *find_model(struct ublk *u, const char *name)
{
	for (struct ublk_model *m = u->models_list; m; m = m->next)
		if (streq(m->name, name))
			return m;
	return NULL;
}

static int add_waiter(struct ublk_model *m, ublk_attach_done_fn done, void *userdata)
{
	struct attach_waiter *w = calloc(1, sizeof(*w)), **p;

	if (!w)
		return -ENOMEM;
	w->done = done;
	w->userdata = userdata;
	for (p = &m->waiters; *p; p = &(*p)->next)
		;
	*p = w;
	return 0;
}

int ublk_attach_model(struct ublk *u, const char *name, ublk_attach_done_fn done, void *userdata)
{
	const struct catalogue_model *cm = NULL;
	const struct catalogue_blob *meta;
	struct ublk_model *m = find_model(u, name);
	size_t n = 0;
	int r;

	if (m) {
		if (m->state == MODEL_REMOVING)
			return -EBUSY;
		if (m->state == MODEL_STARTING) {
			m->detach_requested = false;
			return add_waiter(m, done, userdata);
		}
		done(userdata, 0, m->source, m->options);
		return 0;
	}
	meta = models_resolve(u->models, name, strlen(name), &cm);
	if (!meta || !cm || meta->role != BLOB_ROLE_META)
		return -ENOENT;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->devs = calloc(cm->n_blobs, sizeof(*m->devs));
	if (!m->devs) {
		free(m);
		return -ENOMEM;
	}
	m->u = u;
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->meta_digest, sizeof(m->meta_digest), "%s", meta->digest);
	m->state = MODEL_STARTING;
	/* The metadata blob first (the primary device), then the data blobs in catalogue order:
	 * publish makes one data blob, device 1 of the image's device table. */
	r = dev_new(m, meta, &m->devs[n]);
	if (r >= 0)
		n++;
	for (size_t i = 0; r >= 0 && i < cm->n_blobs; i++) {
		if (cm->blobs[i].role != BLOB_ROLE_DATA)
			continue;
		r = dev_new(m, &cm->blobs[i], &m->devs[n]);
		if (r >= 0)
			n++;
	}
	if (r >= 0)
		r = add_waiter(m, done, userdata);
	/* Kept, so that a re-publish under the name leaves this version servable to the devices
	 * of the next daemon (recovery) until they go. */
	if (r >= 0 && models_retain(u->models, cm) < 0)
		log_warn("model %s: cannot keep a copy of this version: after a re-publish, a "
			 "restart of the daemon replaces its mount",
			 name);
	if (r < 0) {
		for (size_t i = 0; i < n; i++) {
			blob_unref(u, m->devs[i]->blob);
			free(m->devs[i]);
		}
		free(m->devs);
		free(m);
		return r;
	}
	m->n_total = m->n_devs = n;
	m->next = u->models_list;
	u->models_list = m;
	m->holds++;
	for (size_t i = 0; i < n; i++) {
		struct ublk_dev *d = m->devs[i];
		r = ctrl_command(u, d, UBLK_CMD_ADD_DEV, -1, on_added, true, false, 0);
		if (r < 0) {
			/* Nothing is with the kernel for this one: it goes at once. */
			m->error = m->error ? m->error : r;
			d->state = DEV_RELEASING;
			model_device_failed(m, r);
			dev_release_if_idle(d);
		}
	}
	m->holds--;
	model_maybe_free(m);
	return 0;
}

void ublk_attach_cancel(struct ublk *u, const char *name, void *userdata)
{
	struct ublk_model *m = find_model(u, name);

	if (!m)
		return;
	for (struct attach_waiter **p = &m->waiters; *p; p = &(*p)->next)
		if ((*p)->userdata == userdata) {
			struct attach_waiter *w = *p;
			*p = w->next;
			free(w);
			return;
		}
}

void ublk_detach_model(struct ublk *u, const char *name)
{
	struct ublk_model *m = find_model(u, name);

	if (!m || m->state == MODEL_REMOVING)
		return;
	if (m->state == MODEL_STARTING) {
		m->detach_requested = true;
		return;
	}
	log_info("model %s: removing its block devices", m->name);
	m->state = MODEL_REMOVING;
	m->holds++;
	for (size_t i = 0; i < m->n_total; i++)
		if (m->devs[i])
			dev_remove(m->devs[i]);
	m->holds--;
	model_maybe_free(m);
}

/* ---- devices left by an earlier daemon: served again, or deleted ---- */

#define RECOVERY_WAIT_MS 5000  /* for the kernel to quiesce a device of a dead server */
#define RECOVERY_END_MS	 10000 /* END_USER_RECOVERY: returns once every tag is fetched */

static void on_late(struct ublk *u, struct ctrl_op *op, int res)
{
	log_warn("ublk: control command %u for device %d answered late (%d)", op->cmd_op,
		 op->dev_id, res);
}

/* A control command, waited for (start-up only, before the loop runs): the result, -ETIME if
 * the kernel did not answer in timeout_ms (the command stays with it; its late answer is only
 * logged). info: GET_DEV_INFO's answer. */
static int ctrl_sync(struct ublk *u, uint32_t cmd_op, int dev_id,
		     struct ublksrv_ctrl_dev_info *info, uint64_t data0, unsigned timeout_ms)
{
	struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
					.tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
	struct ctrl_op *op = calloc(1, sizeof(*op));
	struct io_uring_cqe *cqe;
	int r;

	if (!op)
		return -ENOMEM;
	op->done = on_late;
	op->cmd_op = cmd_op;
	op->dev_id = dev_id;
	r = ctrl_send(u, op, info ? &op->buf.info : NULL, info ? sizeof(op->buf.info) : 0, data0);
	if (r < 0) {
		free(op);
		return r;
	}
	for (;;) {
		struct ctrl_op *got;
		r = io_uring_wait_cqe_timeout(&u->ctrl, &cqe, &ts);
		if (r < 0)
			return r; /* op is the ring's now: on_late frees it */
		got = (struct ctrl_op *)(uintptr_t)cqe->user_data;
		r = cqe->res;
		io_uring_cqe_seen(&u->ctrl, cqe);
		if (got == op)
			break;
		got->done(u, got, r); /* a late one */
		free(got);
	}
	if (info)
		*info = op->buf.info;
	free(op);
	return r;
}

static void on_stale_deleted(struct ublk *u, struct ctrl_op *op, int res)
{
	if (res < 0 && res != -ENODEV)
		log_warn_errno(res, "ublk: cannot delete device %d of an earlier daemon",
			       op->dev_id);
	else if (res >= 0)
		log_info("ublk: deleted device %d left by an earlier daemon", op->dev_id);
}

/* DEL_DEV, answered once the device is released (its stale mount replaced, its files closed). */
static void delete_stale(struct ublk *u, int dev_id)
{
	if (ctrl_command(u, NULL, UBLK_CMD_DEL_DEV, dev_id, on_stale_deleted, false, false, 0) < 0)
		log_warn("ublk: cannot delete device %d of an earlier daemon", dev_id);
}

static bool other_process_alive(int pid)
{
	return pid > 0 && pid != getpid() && (kill(pid, 0) == 0 || errno != ESRCH);
}

/* Serve a device of a dead daemon again: wait until the kernel has quiesced it (the requests
 * of its readers wait, requeued), START_USER_RECOVERY, fetch every tag on a new queue,
 * END_USER_RECOVERY: the waiting requests come to us. -EBUSY: another server's, leave it;
 * other -errno: delete it. */
static int recover_device(struct ublk_dev *d)
{
	uint64_t deadline = loop_now_ms() + RECOVERY_WAIT_MS;
	struct ublksrv_ctrl_dev_info info;
	struct io_uring_cqe *cqe;
	int r;

	for (;;) {
		r = ctrl_sync(d->u, UBLK_CMD_GET_DEV_INFO, d->id, &info, 0, RECOVERY_WAIT_MS);
		if (r < 0)
			return r;
		if (info.nr_hw_queues != 1 || info.queue_depth != UBLK_QUEUE_DEPTH ||
		    info.max_io_buf_bytes != UBLK_IO_BUF_BYTES)
			return -EINVAL; /* not the geometry of our queues */
		switch (ublk_plan_recovery(&info, other_process_alive(info.ublksrv_pid))) {
		case UBLK_RECOVER_NOT_OURS:
			return -EBUSY;
		case UBLK_RECOVER_DELETE:
			return -ENODEV;
		case UBLK_RECOVER_WAIT:
			if (loop_now_ms() >= deadline)
				return -ETIMEDOUT;
			usleep(20000);
			continue;
		case UBLK_RECOVER_START:
			break;
		}
		/* EBUSY while the dead daemon's char device is still being released. */
		r = ctrl_sync(d->u, UBLK_CMD_START_USER_RECOVERY, d->id, NULL, 0, RECOVERY_WAIT_MS);
		if (r != -EBUSY)
			break;
		if (loop_now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(20000);
	}
	if (r < 0)
		return r;
	r = queue_open(d);
	if (r < 0)
		return r;
	/* A fetch the kernel refused answers at once; the others wait for requests. */
	if (io_uring_peek_cqe(&d->ring, &cqe) == 0) {
		r = cqe->res < 0 ? cqe->res : -EPROTO;
		io_uring_cqe_seen(&d->ring, cqe);
		return r;
	}
	r = ctrl_sync(d->u, UBLK_CMD_END_USER_RECOVERY, d->id, NULL, (uint64_t)getpid(),
		      RECOVERY_END_MS);
	if (r < 0)
		return r;
	d->started = true;
	d->state = DEV_LIVE;
	d->u->stats.devices++;
	log_info("model %s: /dev/ublkb%d recovered: serves blob %.12s again (%s)", d->model->name,
		 d->id, fill_sink_blob(d->blob->sink)->digest, d->meta ? "meta" : "data");
	return 0;
}

static const struct catalogue_blob *version_blob(const struct catalogue_model *cm,
						 const char *digest)
{
	for (size_t i = 0; i < cm->n_blobs; i++)
		if (streq(cm->blobs[i].digest, digest))
			return &cm->blobs[i];
	return NULL;
}

/* The devices of one model (recs[0..n), in the order of its devices: meta first): all served
 * again and the model live with the same mount source and options, or none (the model's mount
 * is then replaced over new devices). */
static void recover_model(struct ublk *u, const struct ublk_record *recs, size_t n)
{
	const struct catalogue_model *cm = NULL;
	struct ublk_model *m = NULL;
	size_t done = 0;
	int r = 0;

	if (recs[0].meta)
		cm = models_find_version(u->models, recs[0].model, recs[0].digest);
	if (!cm) {
		log_warn("model %s: its devices of an earlier daemon serve a version that is "
			 "neither in the catalogue nor kept: deleting them",
			 recs[0].model);
		r = -ENOENT;
		goto fail;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->devs = calloc(n, sizeof(*m->devs)))) {
		free(m);
		m = NULL;
		r = -ENOMEM;
		goto fail;
	}
	m->u = u;
	snprintf(m->name, sizeof(m->name), "%s", recs[0].model);
	snprintf(m->meta_digest, sizeof(m->meta_digest), "%s", recs[0].digest);
	m->state = MODEL_STARTING;
	m->next = u->models_list;
	u->models_list = m;
	m->holds++;
	for (; done < n; done++) {
		const struct catalogue_blob *cb = version_blob(cm, recs[done].digest);
		struct ublk_dev *d;

		if (!cb || (cb->role == BLOB_ROLE_META) != recs[done].meta) {
			r = -ENOENT;
			break;
		}
		r = dev_new(m, cb, &d);
		if (r < 0)
			break;
		d->id = recs[done].dev_id;
		m->devs[m->n_total++] = d;
		m->n_devs++;
		r = recover_device(d);
		if (r < 0) {
			if (r == -ENODEV)
				log_notice("model %s: /dev/ublkb%d was stopped (restart_grace ran "
					   "out, or made without recovery): the model gets new "
					   "devices, its mount is replaced",
					   m->name, d->id);
			else
				log_warn_errno(r, "model %s: cannot serve /dev/ublkb%d again",
					       m->name, d->id);
			d->state = DEV_RELEASING; /* not ours again: freed, and deleted below */
			m->devs[--m->n_total] = NULL;
			queue_close(d);
			blob_unref(u, d->blob);
			free(d);
			m->n_devs--;
			break;
		}
	}
	if (r >= 0) {
		if (models_retain(u->models, cm) < 0)
			log_warn("model %s: cannot keep a copy of this version", m->name);
		m->holds--;
		model_check_live(m);
		log_notice("model %s: %zu block devices of the earlier daemon served again: its "
			   "mount stays",
			   m->name, n);
		return;
	}
	model_device_failed(m, r); /* the devices served again are stopped and deleted */
	m->holds--;
	model_maybe_free(m);
fail:
	for (size_t i = done; i < n; i++)
		if (r != -EBUSY || i > done)
			delete_stale(u, recs[i].dev_id);
}

static void recover_devices(struct ublk *u)
{
	_cleanup_fclose_ FILE *f = fopen(u->record_path, "re");
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ struct ublk_record *recs = NULL;
	size_t n = 0, len = 0;
	char err[128] = "";

	if (!f || getdelim(&text, &len, '\0', f) < 0)
		return;
	if (ublk_records_parse(text, &recs, &n, err, sizeof(err)) < 0) {
		log_warn("%s: %s: ignored", u->record_path, err);
		return;
	}
	/* A model's devices are recorded together, its metadata device first. */
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && streq(recs[j].model, recs[i].model) && !recs[j].meta; j++)
			;
		if (!u->recovery) {
			for (size_t k = i; k < j; k++)
				delete_stale(u, recs[k].dev_id);
			continue;
		}
		recover_model(u, recs + i, j - i);
	}
}

void ublk_release_devices(int ctrl_fd, const char *run_dir)
{
	struct ublk u = { .ctrl_fd = ctrl_fd };
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_free_ struct ublk_record *recs = NULL;
	FILE *f;
	size_t n = 0, len = 0;
	char err[128] = "";

	if (asprintf(&path, "%s/ublk-devices", run_dir) < 0 || !(f = fopen(path, "re")))
		return;
	if (getdelim(&text, &len, '\0', f) < 0 ||
	    ublk_records_parse(text, &recs, &n, err, sizeof(err)) < 0) {
		fclose(f);
		log_warn("%s: cannot read the devices to stop %s", path, err);
		return;
	}
	fclose(f);
	if (io_uring_queue_init(CTRL_RING_ENTRIES, &u.ctrl, IORING_SETUP_SQE128) < 0) {
		log_error("cannot make an io_uring to stop the ublk devices: their readers wait");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct ublksrv_ctrl_dev_info info;
		int r = ctrl_sync(&u, UBLK_CMD_GET_DEV_INFO, recs[i].dev_id, &info, 0,
				  RECOVERY_WAIT_MS);
		if (r < 0 || info.state == UBLK_S_DEV_DEAD || other_process_alive(info.ublksrv_pid))
			continue;
		r = ctrl_sync(&u, UBLK_CMD_STOP_DEV, recs[i].dev_id, NULL, 0, RECOVERY_END_MS);
		if (r < 0)
			log_error_errno(r, "cannot stop /dev/ublkb%d (model %s)", recs[i].dev_id,
					recs[i].model);
		else
			log_notice("stopped /dev/ublkb%d (model %s): its reads fail with EIO",
				   recs[i].dev_id, recs[i].model);
	}
	io_uring_queue_exit(&u.ctrl);
}

/* A version whose devices serve: kept while they do. */
static bool version_in_use(void *userdata, const char *name, const char *meta)
{
	struct ublk *u = userdata;
	struct ublk_model *m = find_model(u, name);

	return m && streq(m->meta_digest, meta);
}

/* ---- start and stop ---- */

int ublk_probe(const char *control)
{
	int fd = open(control, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

int ublk_start(struct loop *loop, struct fill *fill, struct models *models,
	       const struct ublk_options *opts, struct ublk **out)
{
	struct ublk *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	u->loop = loop;
	u->fill = fill;
	u->models = models;
	u->ctrl_fd = -EBADF;
	if (asprintf(&u->cache_dir, "%s/ublk", opts->cache_dir) < 0 ||
	    asprintf(&u->record_path, "%s/ublk-devices", opts->run_dir) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = mkdir_parents(u->cache_dir);
	if (r < 0) {
		log_error_errno(r, "cannot create the cache directory %s", u->cache_dir);
		goto fail;
	}
	u->ctrl_fd = open(opts->control, O_RDWR | O_CLOEXEC);
	if (u->ctrl_fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			log_error_errno(r,
					"%s is missing: load the ublk driver (modprobe ublk_drv; "
					"CONFIG_BLK_DEV_UBLK, Linux 6.0+)",
					opts->control);
		else
			log_error_errno(r, "cannot open %s (run blobcached as root)",
					opts->control);
		goto fail;
	}
	r = io_uring_queue_init(CTRL_RING_ENTRIES, &u->ctrl, IORING_SETUP_SQE128);
	if (r < 0) {
		log_error_errno(r, "cannot make the ublk control ring (io_uring with SQE128: Linux "
				   "5.19+)");
		goto fail;
	}
	u->ctrl_ready = true;
	r = loop_add_fd(loop, u->ctrl.ring_fd, EPOLLIN, on_ctrl, u);
	if (r < 0)
		goto fail;
	u->ctrl_on_loop = true;
	u->recovery = opts->recovery;
	models_set_in_use(models, version_in_use, u);
	recover_devices(u);
	save_records(u); /* the list is ours from now on */
	log_info("ublk front end: control %s, cache files in %s, %u-deep queue per device, %u KiB "
		 "per request",
		 opts->control, u->cache_dir, UBLK_QUEUE_DEPTH, UBLK_IO_BUF_BYTES >> 10);
	*out = u;
	return 0;
fail:
	ublk_stop(u);
	return r;
}

void ublk_stop(struct ublk *u)
{
	if (!u)
		return;
	while (u->models_list) {
		struct ublk_model *m = u->models_list;
		u->models_list = m->next;
		for (size_t i = 0; i < m->n_total; i++) {
			struct ublk_dev *d = m->devs[i];
			if (!d)
				continue;
			/* The requests in hand stay unanswered: closing the queue makes the
			 * kernel fail them. */
			queue_close(d);
			blob_unref(u, d->blob);
			free(d);
		}
		while (m->waiters) {
			struct attach_waiter *w = m->waiters;
			m->waiters = w->next;
			free(w);
		}
		free(m->devs);
		free(m);
	}
	while (u->blobs) { /* opened by warms still running: the exit ends them */
		struct ublk_blob *b = u->blobs;
		u->blobs = b->next;
		fill_sink_unref(b->sink);
		free(b);
	}
	if (u->ctrl_on_loop)
		loop_remove_fd(u->loop, u->ctrl.ring_fd);
	if (u->ctrl_ready)
		io_uring_queue_exit(&u->ctrl);
	if (u->ctrl_fd >= 0)
		close(u->ctrl_fd);
	free(u->cache_dir);
	free(u->record_path);
	free(u);
}

const struct ublk_stats *ublk_get_stats(const struct ublk *u)
{
	return &u->stats;
}

void ublk_print_devices(const struct ublk *u, FILE *f)
{
	if (!u)
		return;
	for (const struct ublk_model *m = u->models_list; m; m = m->next)
		for (size_t i = 0; i < m->n_total; i++) {
			const struct ublk_dev *d = m->devs[i];
			if (d)
				fprintf(f, "ublk %d model %s blob %s %s %s\n", d->id, m->name,
					fill_sink_blob(d->blob->sink)->digest,
					d->meta ? "meta" : "data", dev_state_names[d->state]);
		}
}

/* ---- the space manager's view of the cache files ---- */

void ublk_set_space(struct ublk *u, struct space *sp)
{
	u->space = sp;
}

static struct ublk_blob *find_blob(struct ublk *u, const char *digest)
{
	for (struct ublk_blob *b = u->blobs; b; b = b->next)
		if (streq(fill_sink_blob(b->sink)->digest, digest))
			return b;
	return NULL;
}

static int64_t mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* In the space manager's scan thread: reads u->cache_dir only (set for the front end's life). */
static void ublk_list_files(void *userdata, space_file_fn fn, void *ctx)
{
	struct ublk *u = userdata;
	DIR *dir = opendir(u->cache_dir);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		const char *name = de->d_name;
		size_t len = strlen(name);
		char map_name[NAME_MAX + 1];
		struct space_file_info fi = { .volume = UBLK_SPACE_VOLUME, .key = name };
		struct stat st, mst;
		_cleanup_free_ char *map_path = NULL;

		if (len == DIGEST_HEX_LEN + 4 && streq(name + DIGEST_HEX_LEN, ".map") &&
		    name_is_digest(name, DIGEST_HEX_LEN)) {
			/* A map whose file is gone (a crash between the two unlinks of a
			 * removal: the map goes first) is a leftover: ublk_remove_leftover
			 * removes it in the loop thread, so a new file starts empty. */
			char file[DIGEST_HEX_LEN + 1];
			snprintf(file, sizeof(file), "%.*s", DIGEST_HEX_LEN, name);
			if (fstatat(dirfd(dir), file, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
			    errno == ENOENT) {
				fi.key = file;
				fi.leftover = true;
				fn(ctx, &fi);
			}
			continue;
		}
		if (len != DIGEST_HEX_LEN || !name_is_digest(name, len))
			continue;
		if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		fi.bytes = (uint64_t)st.st_blocks * 512;
		fi.mtime_ms = mtime_ms(&st);
		snprintf(map_name, sizeof(map_name), "%s.map", name);
		if (fstatat(dirfd(dir), map_name, &mst, AT_SYMLINK_NOFOLLOW) == 0) {
			fi.bytes += (uint64_t)mst.st_blocks * 512;
			fi.mtime_ms = MAX(fi.mtime_ms, mtime_ms(&mst));
			if (asprintf(&map_path, "%s/%s", u->cache_dir, map_name) < 0)
				map_path = NULL;
			if (!map_path || chunkmap_file_cached(map_path, &fi.cached) < 0)
				fi.cached = 0;
		}
		fn(ctx, &fi);
	}
	closedir(dir);
}

/* A map without its file that the scan reported: removed unless a blob opened since has it (a
 * new file made meanwhile keeps its map). In the loop thread, as every blob_get. */
static void ublk_remove_leftover(void *userdata, const char *key)
{
	struct ublk *u = userdata;
	_cleanup_close_ int dfd = -EBADF;
	char map_name[NAME_MAX + 1];
	struct stat st;

	if (!name_is_digest(key, strlen(key)) || find_blob(u, key))
		return;
	dfd = open(u->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	if (fstatat(dfd, key, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return;
	snprintf(map_name, sizeof(map_name), "%s.map", key);
	unlinkat(dfd, map_name, 0);
}

/* The map goes first, made durable, then the file: a crash in between leaves a file without a
 * map (all chunks absent, refetched), never a map claiming chunks of a missing or new file. */
static int ublk_remove_file(void *userdata, const char *volume, const char *key)
{
	struct ublk *u = userdata;
	_cleanup_close_ int dfd = -EBADF;
	char map_name[NAME_MAX + 1];
	bool had_map;

	if (!streq(volume, UBLK_SPACE_VOLUME) || !name_is_digest(key, strlen(key)))
		return -ENOENT;
	if (find_blob(u, key))
		return -EBUSY; /* a device (or a warm) has it open */
	dfd = open(u->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	snprintf(map_name, sizeof(map_name), "%s.map", key);
	had_map = unlinkat(dfd, map_name, 0) == 0;
	if (!had_map && errno != ENOENT)
		return -errno;
	if (had_map && fsync(dfd) < 0)
		return -errno;
	if (unlinkat(dfd, key, 0) < 0)
		return errno == ENOENT && had_map ? 0 : -errno;
	return 0;
}

static struct fill_sink *ublk_open_sink(void *userdata, const struct catalogue_blob *b)
{
	struct ublk *u = userdata;
	struct ublk_blob *ub = NULL;

	if (blob_get(u, b, &ub) < 0)
		return NULL;
	return ub->sink; /* the blob reference stands for it: ublk_put_sink drops it */
}

static void ublk_put_sink(void *userdata, struct fill_sink *s)
{
	struct ublk *u = userdata;

	for (struct ublk_blob *b = u->blobs; b; b = b->next)
		if (b->sink == s)
			return blob_unref(u, b);
	log_error("ublk: a sink given back is not one of the open blobs'");
}

static bool ublk_model_device(void *userdata, const char *model, char *source, size_t len)
{
	struct ublk *u = userdata;
	struct ublk_model *m = find_model(u, model);

	if (!m)
		return false;
	for (size_t i = 0; i < m->n_total; i++)
		if (m->devs[i] && m->devs[i]->meta && m->devs[i]->id >= 0 && len)
			snprintf(source, len, "/dev/ublkb%d", m->devs[i]->id);
	return true;
}

const struct space_kernel_ops ublk_space_ops = {
	.file_volume = UBLK_SPACE_VOLUME,
	.list_files = ublk_list_files,
	.remove_leftover = ublk_remove_leftover,
	.remove_file = ublk_remove_file,
	.open_sink = ublk_open_sink,
	.put_sink = ublk_put_sink,
	.model_device = ublk_model_device,
};
