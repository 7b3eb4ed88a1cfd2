/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The few parts of the EROFS on-disk superblock that blobcache needs: validate a metadata blob
 * for cachefiles on-demand (fscache) mode and write device tags into its device table.
 *
 * Layout per Linux fs/erofs/erofs_fs.h: the superblock sits at byte 1024 of the primary
 * device; the device table starts at devt_slotoff * 128 bytes and holds one 128-byte slot
 * (64-byte tag, blocks, mapped_blkaddr) per extra device. In fscache mode the kernel uses a
 * slot's tag as the cookie key of that device's blob unless `-o device=` overrides it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EROFS_SUPER_OFFSET    1024
#define EROFS_SUPER_MAGIC     0xE0F5E1E2u
#define EROFS_FSCACHE_BLKBITS 12 /* fscache mode needs blocks == PAGE_SIZE */
#define EROFS_DEVT_SLOT_SIZE  128
#define EROFS_DEVICE_TAG_LEN  64

#define EROFS_FEATURE_COMPAT_SB_CHKSUM	    0x00000001u
#define EROFS_FEATURE_INCOMPAT_CHUNKED_FILE 0x00000004u
#define EROFS_FEATURE_INCOMPAT_DEVICE_TABLE 0x00000008u

/* The decoded fields blobcache looks at (host byte order). */
struct erofs_sb_info {
	uint32_t checksum;
	uint32_t feature_compat;
	uint32_t feature_incompat;
	uint8_t blkszbits;
	uint32_t blocks;
	uint8_t uuid[16];
	uint16_t extra_devices;
	uint16_t devt_slotoff;
};

/* The error convention of the EROFS reader and writer: the reason, formatted into err (if err
 * is not NULL and err_len not 0), for the caller to show; returns -EINVAL. */
int erofs_invalid(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) without pre- or post-inversion:
 * feed `crc` as the seed and get the raw register back. The standard CRC-32C of a buffer is
 * crc32c(~0u, buf, len) ^ ~0u; EROFS stores crc32c(~0u, ...) with no final inversion. */
uint32_t erofs_crc32c(uint32_t crc, const void *buf, size_t len);

/* Decode and validate the superblock of a metadata blob held in memory (`len` bytes from
 * the start of the image). Checks magic, blkszbits == 12 (fscache mode), the checksum when
 * SB_CHKSUM is set, and that the device table lies inside the first block.
 * Returns 0, or -EINVAL with a reason in err ("what is wrong"; err may be NULL). */
int erofs_sb_read(const void *image, size_t len, struct erofs_sb_info *out, char *err,
		  size_t err_len);

/* Superblock checksum as the kernel verifies it: crc32c(~0, block bytes 1024..4096 with the
 * checksum field taken as zero). `image` must hold at least 4096 bytes. */
uint32_t erofs_sb_compute_checksum(const void *image);

/* Write `tag` (exactly 64 bytes, not NUL-terminated on disk) into device slot `slot`
 * (0-based: the first extra device) and, if `blocks` is not 0, the slot's block count;
 * then recompute the superblock checksum if the image has SB_CHKSUM.
 * The image is validated first (erofs_sb_read). Returns 0, -EINVAL (bad image; reason in
 * err) or -ERANGE (slot >= extra_devices). */
int erofs_sb_set_device(void *image, size_t len, unsigned int slot, const char *tag,
			uint32_t blocks, char *err, size_t err_len);

/* Read device slot `slot`'s tag into tag_out (65 bytes, NUL-terminated; an empty tag gives
 * ""). Returns 0, -EINVAL or -ERANGE as above. */
int erofs_sb_get_device_tag(const void *image, size_t len, unsigned int slot, char *tag_out,
			    uint32_t *blocks_out);

/* File helpers: the same operations on the first block of a metadata blob file. */
int erofs_file_read_sb(const char *path, struct erofs_sb_info *out, char *err, size_t err_len);
int erofs_file_set_device(const char *path, unsigned int slot, const char *tag, uint32_t blocks,
			  char *err, size_t err_len);
