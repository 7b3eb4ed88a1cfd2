/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pure parts of the ublk front end (ublk.c does the io_uring and the devices): the shape of
 * a device for a blob, what to do with one request, the mount of a model over its devices, and
 * the record of the devices kept in run_dir (what a restarted daemon needs to find them).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/ublk_cmd.h>

#include "names.h"

/* One queue of UBLK_QUEUE_DEPTH requests per device, each with a buffer of UBLK_IO_BUF_BYTES:
 * at most 16 x 512 KiB = 8 MiB of I/O buffers per device, touched only as requests use them. */
#define UBLK_QUEUE_DEPTH  16
#define UBLK_IO_BUF_BYTES (512u * 1024)
#define UBLK_BLOCK_SHIFT  12 /* EROFS blocks are 4096 bytes; so are the device's sectors */

/* Pure: the device size for a blob: its size rounded up to the logical block (the tail reads as
 * zeros). */
uint64_t ublk_plan_dev_bytes(uint64_t blob_size);

/* Pure: the ADD_DEV request: one queue, depth and buffer size as above. recovery: the device
 * outlives its server (UBLK_F_USER_RECOVERY, with REISSUE: requests in hand when the daemon
 * died are sent again to the next one; reads are idempotent), else no flags. */
void ublk_plan_dev_info(struct ublksrv_ctrl_dev_info *info, int pid, bool recovery);

/* What a new daemon does with a recorded device, from GET_DEV_INFO. */
enum ublk_recovery_action {
	UBLK_RECOVER_NOT_OURS, /* a live server other than us serves it: leave it alone */
	UBLK_RECOVER_WAIT,     /* its server is gone, the kernel is still quiescing it: ask again */
	UBLK_RECOVER_START,    /* quiesced: START_USER_RECOVERY, serve it, END_USER_RECOVERY */
	UBLK_RECOVER_DELETE,   /* dead, or made without recovery: DEL_DEV (its mount is replaced) */
};
/* Pure: server_alive: the recorded server pid (info->ublksrv_pid) names a running process
 * other than self_pid. */
enum ublk_recovery_action ublk_plan_recovery(const struct ublksrv_ctrl_dev_info *info,
					     bool server_alive);

/* Pure: SET_PARAMS for a read-only device of a blob of blob_size bytes. -EINVAL if the size is
 * 0 or too large. */
int ublk_plan_params(uint64_t blob_size, struct ublk_params *p);

enum ublk_io_action {
	UBLK_IO_ACTION_READ,	/* read [*off, *off + *len) of the blob */
	UBLK_IO_ACTION_SUCCEED, /* nothing to do: complete with 0 (FLUSH) */
	UBLK_IO_ACTION_FAIL,	/* complete with *err (writes to a read-only device, bad ranges) */
};

/* Pure: what to do with request iod on a device of dev_bytes. */
enum ublk_io_action ublk_plan_io(const struct ublksrv_io_desc *iod, uint64_t dev_bytes,
				 uint64_t *off, uint32_t *len, int *err);

/* Pure: the mount of a model whose metadata blob is device meta_id and whose data blobs are
 * devices data_ids[0..n) in the order of the image's device table: *source is the primary
 * device, *options "device=...,device=..." then `extra` (the user's options). Returns 0 or
 * -ENAMETOOLONG. */
int ublk_plan_mount(int meta_id, const int *data_ids, size_t n, const char *extra, char *source,
		    size_t source_len, char *options, size_t options_len);

/* One device as recorded in run_dir/ublk-devices. */
struct ublk_record {
	int dev_id;
	char model[MODEL_NAME_MAX + 1];
	char digest[DIGEST_HEX_LEN + 1];
	bool meta; /* the model's metadata blob (else a data blob) */
};

/* Pure: the record file text, one "dev ID model NAME blob DIGEST meta|data" line per device
 * after a comment. Returns a malloc'ed string or NULL (ENOMEM). */
char *ublk_records_format(const struct ublk_record *r, size_t n);
/* Pure: parse it. Returns 0 with *out (free()) and *n, or -EINVAL (err: "line N: ...") or
 * -ENOMEM. */
int ublk_records_parse(const char *text, struct ublk_record **out, size_t *n, char *err,
		       size_t err_len);
