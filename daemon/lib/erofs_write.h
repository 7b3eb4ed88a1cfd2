/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An EROFS metadata image writer for publish: an in-memory tree of directories and regular
 * files, turned into one metadata blob (the primary device) whose chunk-based inodes map files
 * onto extra devices: one device per large file, each device being that file's content
 * (zero-padded to a whole block; the file itself in place, or a copy named by its digest), and
 * for a copying publish one packed device holding the small files block by block. mkfs.erofs
 * 1.5 can map chunks onto one blob device only, so this is written from the on-disk format
 * (Linux fs/erofs/erofs_fs.h):
 *
 *   block 0          superblock at byte 1024 (crc32c checksum), device table at byte 1152
 *   meta_blkaddr...  64-byte extended inodes, 32-byte aligned (nid = offset / 32), root first;
 *                    each followed by its inline tail (a small file's last partial block, never
 *                    crossing a block) or its 8-byte chunk indexes (device id + block address)
 *   then             directory blocks and the whole blocks of small files (flat layout)
 *
 * Inline small files live entirely in the metadata blob: their tails packed next to their
 * inodes, so a model's many small files cost about their size. Everything is owned by root, with
 * mtime = build time and the permission bits given: the image is a function of its input alone.
 * Pure: no I/O. Not thread-safe (one builder per thread).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "erofs.h"

#define EROFS_W_BLOCK_SIZE    4096u
#define EROFS_W_ROOT	      0 /* node id of the root directory */
#define EROFS_W_NAME_MAX      255
#define EROFS_W_CHUNKBITS_MIN 12
#define EROFS_W_CHUNKBITS_MAX (12 + 31) /* the 5-bit chunk blkbits field */
/* The daemon reads the first 64 KiB of a metadata blob for its device table (erofs.c). */
#define EROFS_W_DEVICES_MAX ((64u * 1024 - 1152) / EROFS_DEVT_SLOT_SIZE)

struct erofs_writer;

/* A new tree holding only the root directory (mode 0755). chunk_bits: log2 of the chunk size of
 * chunk-based files, EROFS_W_CHUNKBITS_MIN..MAX. Returns NULL on ENOMEM or a bad chunk_bits. */
struct erofs_writer *erofs_writer_new(const uint8_t uuid[16], unsigned int chunk_bits,
				      uint64_t build_time);
void erofs_writer_free(struct erofs_writer *w);
static inline void erofs_writer_freep(struct erofs_writer **w)
{
	erofs_writer_free(*w);
}

/* An extra device: `tag` (1..64 bytes, written without NUL; the fscache cookie key of the
 * device) and its size in 4096-byte blocks (> 0). Returns its device id (1, 2, ... in order of
 * addition: the id chunk indexes carry), -EINVAL (bad tag or size) or -E2BIG (too many). */
int erofs_writer_add_device(struct erofs_writer *w, const char *tag, uint32_t blocks);

/* Change device `device`'s tag and size: for a device whose content is known only once its
 * files are added (a packed blob). Returns 0 or -EINVAL (no such device, bad tag or size). */
int erofs_writer_set_device(struct erofs_writer *w, unsigned int device, const char *tag,
			    uint32_t blocks);

/* Add an entry to directory node `parent`. `name`: 1..255 bytes, no '/', not "." or "..",
 * unique in the directory. `mode`: permission bits (07777 is kept, the type is set here).
 * Return the new node id (>= 1), or -EINVAL (bad name, parent not a directory), -EEXIST (the
 * name exists in the directory), -ENOMEM. */
int erofs_writer_add_dir(struct erofs_writer *w, int parent, const char *name, unsigned int mode);

/* A file whose `size` bytes are copied into the metadata blob. */
int erofs_writer_add_file_inline(struct erofs_writer *w, int parent, const char *name,
				 unsigned int mode, const void *data, uint64_t size);

/* A file (size > 0) whose bytes lie contiguously on device `device` from block `blkaddr`:
 * chunk k maps onto block blkaddr + k * (chunk size / 4096) of that device. The device must
 * hold the file's blocks (checked by erofs_writer_build). Also -ERANGE if the block addresses
 * overflow 32 bits. */
int erofs_writer_add_file_chunked(struct erofs_writer *w, int parent, const char *name,
				  unsigned int mode, uint64_t size, unsigned int device,
				  uint32_t blkaddr);

/* Lay out and write the image: *image (malloc'd, the caller frees it) of *len bytes, a
 * multiple of 4096. Returns 0, -ENOMEM, or -EINVAL/-EFBIG with the reason in err (a file
 * beyond its device's blocks, an image too large for 32-bit block addresses). The builder
 * stays usable (building twice gives the same bytes). */
int erofs_writer_build(struct erofs_writer *w, uint8_t **image, size_t *len, char *err,
		       size_t err_len);
