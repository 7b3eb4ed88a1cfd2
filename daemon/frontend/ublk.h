/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ublk front end: for a mounted model, one read-only ublk block device per blob (its
 * metadata blob, then its data blobs), served over io_uring from the blob's cache file on the
 * cache volume; a READ of a range not yet cached goes through the fill core first. For stock
 * kernels (ublk_drv, Linux 6.0+), where cachefiles on-demand mode is off.
 *
 * Everything runs in the loop thread: one control ring (SQE128) whose commands the kernel runs
 * in its own io_uring workers (so START_DEV, which reads the new disk, never blocks the loop),
 * and one queue ring per device, on the loop, which also reads the cache files (IORING_OP_READ),
 * so the loop never blocks on the cache volume.
 *
 * Cache files: <cache_dir>/ublk/<blob digest> (plain sparse files, shared by every model that
 * lists the blob) with <digest>.map beside each (core/chunkmap.h: a chunk is served once
 * written, and its map byte is set only once it is fdatasync'd, a batch at a time). Devices are
 * recorded in <run_dir>/ublk-devices.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

struct loop;
struct fill;
struct models;
struct ublk;
struct space;
struct space_kernel_ops;

#define UBLK_CONTROL_DEVICE "/dev/ublk-control"

struct ublk_options {
	const char *control; /* UBLK_CONTROL_DEVICE */
	const char *cache_dir;
	const char *run_dir;
	bool recovery; /* restart_grace > 0: devices outlive the daemon, the next one serves them */
};

struct ublk_stats {
	unsigned long long devices; /* live now */
	unsigned long long devices_added, devices_removed, device_errors;
	unsigned long long reads, reads_cached, reads_failed, bytes_read;
};

/* Can this kernel serve ublk devices? 0, or -errno: -ENOENT (no /dev/ublk-control: ublk_drv
 * not loaded or not built), -EACCES/-EPERM. Logs nothing. */
int ublk_probe(const char *control);

/* Open the control device and its ring, join the loop. Devices of an earlier daemon listed
 * in the record whose server is gone are served again if they were made for recovery and
 * their model's version is known (current or kept): the model stays live under the same
 * devices, its mount stays, its readers saw a pause. Others are deleted. Returns 0 and *out,
 * or -errno (logged with the fix). */
int ublk_start(struct loop *loop, struct fill *fill, struct models *models,
	       const struct ublk_options *opts, struct ublk **out);
/* Report the use of each blob's cache file (a device or a warm has it open) and the reads of
 * its devices to the space manager, as volume UBLK_SPACE_VOLUME, key = the blob digest. */
#define UBLK_SPACE_VOLUME "ublk"
void ublk_set_space(struct ublk *u, struct space *sp);
/* The space manager's actions on the ublk cache files: list them (bytes on disk, cached bytes
 * from the chunk maps), remove one with its map when no device uses it, give the sink of a blob
 * for a warm whether or not it is mounted, say whether a model has devices. */
extern const struct space_kernel_ops ublk_space_ops;

/* Close everything. Devices still present stay: with recovery, quiesced (their readers wait
 * for the next daemon, or for the holder to stop them after restart_grace), else dead (their
 * mounts fail; the next daemon deletes them). Call ublk_detach_model first for a clean
 * removal. */
void ublk_stop(struct ublk *u);
const struct ublk_stats *ublk_get_stats(const struct ublk *u);
/* One "ublk DEV model NAME blob DIGEST meta|data state" line per device. */
void ublk_print_devices(const struct ublk *u, FILE *f);

/* Completion of ublk_attach_model, in the loop thread: 0 with the mount's source device and
 * its options ("device=..." for the data devices), or -errno (source/options are then ""). */
typedef void (*ublk_attach_done_fn)(void *userdata, int result, const char *source,
				    const char *options);

/* Make the devices of model `name` (or use those already made). `done` is called once: at
 * once if they are live, else when they are. Returns 0, or -errno (then done is not called):
 * -ENOENT (not in the catalogue), -EBUSY (its devices are being removed). */
int ublk_attach_model(struct ublk *u, const char *name, ublk_attach_done_fn done, void *userdata);
/* Forget a waiter of ublk_attach_model (its mount was cancelled): done is not called. */
void ublk_attach_cancel(struct ublk *u, const char *name, void *userdata);
/* Remove the devices of model `name` (STOP_DEV, DEL_DEV), after its unmount. */
void ublk_detach_model(struct ublk *u, const char *name);

/* For the device holder, when no daemon came back within restart_grace (run in the holder
 * process, with its own control fd): STOP_DEV every recorded device whose server is gone, so
 * that their waiting readers get EIO, never hang. The next daemon deletes them. */
void ublk_release_devices(int ctrl_fd, const char *run_dir);
