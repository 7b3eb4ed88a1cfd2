// SPDX-License-Identifier: GPL-2.0-or-later
#include "erofs.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macros.h"

#define EROFS_BLOCK_SIZE (1u << EROFS_FSCACHE_BLKBITS)

/* Superblock field offsets relative to EROFS_SUPER_OFFSET (struct erofs_super_block). */
#define SB_MAGIC	    0
#define SB_CHECKSUM	    4
#define SB_FEATURE_COMPAT   8
#define SB_BLKSZBITS	    12
#define SB_EXTSLOTS	    13
#define SB_BLOCKS	    36
#define SB_UUID		    48
#define SB_FEATURE_INCOMPAT 80
#define SB_EXTRA_DEVICES    86
#define SB_DEVT_SLOTOFF	    88
#define SB_SIZE		    128
#define SB_EXTSLOT_SIZE	    16

/* Device slot field offsets (struct erofs_deviceslot). */
#define SLOT_TAG    0
#define SLOT_BLOCKS 64

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

static const uint32_t *crc32c_table(void)
{
	static uint32_t table[256];
	static bool ready;

	/* Idempotent: concurrent first calls write the same values. */
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c >> 1) ^ (0x82F63B78u & -(c & 1));
			table[i] = c;
		}
		__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
	}
	return table;
}

uint32_t erofs_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint32_t *table = crc32c_table();
	const uint8_t *p = buf;

	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t erofs_sb_compute_checksum(const void *image)
{
	const uint8_t *sb = (const uint8_t *)image + EROFS_SUPER_OFFSET;
	static const uint8_t zero[4];
	uint32_t crc = ~0u;

	crc = erofs_crc32c(crc, sb, SB_CHECKSUM);
	crc = erofs_crc32c(crc, zero, sizeof(zero));
	return erofs_crc32c(crc, sb + SB_CHECKSUM + 4,
			    EROFS_BLOCK_SIZE - EROFS_SUPER_OFFSET - SB_CHECKSUM - 4);
}

int erofs_invalid(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err && err_len) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int erofs_sb_read(const void *image, size_t len, struct erofs_sb_info *out, char *err,
		  size_t err_len)
{
	const uint8_t *sb = (const uint8_t *)image + EROFS_SUPER_OFFSET;
	struct erofs_sb_info info = { 0 };
	uint32_t magic, want;
	size_t table_start, table_end, sb_end;

	if (len < EROFS_BLOCK_SIZE)
		return erofs_invalid(err, err_len,
				     "image is %zu bytes, shorter than one 4096-byte block", len);
	magic = get_le32(sb + SB_MAGIC);
	if (magic != EROFS_SUPER_MAGIC)
		return erofs_invalid(err, err_len, "no EROFS superblock (magic 0x%08x at byte %d)",
				     magic, EROFS_SUPER_OFFSET);
	info.checksum = get_le32(sb + SB_CHECKSUM);
	info.feature_compat = get_le32(sb + SB_FEATURE_COMPAT);
	info.blkszbits = sb[SB_BLKSZBITS];
	info.blocks = get_le32(sb + SB_BLOCKS);
	memcpy(info.uuid, sb + SB_UUID, sizeof(info.uuid));
	info.feature_incompat = get_le32(sb + SB_FEATURE_INCOMPAT);
	info.extra_devices = get_le16(sb + SB_EXTRA_DEVICES);
	info.devt_slotoff = get_le16(sb + SB_DEVT_SLOTOFF);

	if (info.blkszbits != EROFS_FSCACHE_BLKBITS)
		return erofs_invalid(
			err, err_len,
			"block size is 2^%u bytes; fscache mode needs 4096-byte blocks "
			"(publish it with blobcachectl publish, which writes them, or "
			"mkfs.erofs -b 4096 without --tar=i)",
			info.blkszbits);
	if (info.feature_compat & EROFS_FEATURE_COMPAT_SB_CHKSUM) {
		want = erofs_sb_compute_checksum(image);
		if (want != info.checksum)
			return erofs_invalid(
				err, err_len,
				"superblock checksum 0x%08x does not match content (0x%08x)",
				info.checksum, want);
	}
	if (info.extra_devices) {
		sb_end = EROFS_SUPER_OFFSET + SB_SIZE + (size_t)sb[SB_EXTSLOTS] * SB_EXTSLOT_SIZE;
		table_start = (size_t)info.devt_slotoff * EROFS_DEVT_SLOT_SIZE;
		table_end = table_start + (size_t)info.extra_devices * EROFS_DEVT_SLOT_SIZE;
		if (table_start < sb_end || table_end > len)
			return erofs_invalid(
				err, err_len,
				"device table (slot offset %u, %u devices) lies outside the image",
				info.devt_slotoff, info.extra_devices);
	}
	if (out)
		*out = info;
	return 0;
}

static uint8_t *slot_ptr(const void *image, const struct erofs_sb_info *info, unsigned int slot)
{
	return (uint8_t *)image + (size_t)(info->devt_slotoff + slot) * EROFS_DEVT_SLOT_SIZE;
}

int erofs_sb_get_device_tag(const void *image, size_t len, unsigned int slot, char *tag_out,
			    uint32_t *blocks_out)
{
	struct erofs_sb_info info;
	const uint8_t *p;
	int r;

	r = erofs_sb_read(image, len, &info, NULL, 0);
	if (r < 0)
		return r;
	if (slot >= info.extra_devices)
		return -ERANGE;
	p = slot_ptr(image, &info, slot);
	memcpy(tag_out, p + SLOT_TAG, EROFS_DEVICE_TAG_LEN);
	tag_out[EROFS_DEVICE_TAG_LEN] = '\0';
	if (blocks_out)
		*blocks_out = get_le32(p + SLOT_BLOCKS);
	return 0;
}

int erofs_sb_set_device(void *image, size_t len, unsigned int slot, const char *tag,
			uint32_t blocks, char *err, size_t err_len)
{
	struct erofs_sb_info info;
	uint8_t *p;
	int r;

	r = erofs_sb_read(image, len, &info, err, err_len);
	if (r < 0)
		return r;
	if (slot >= info.extra_devices) {
		erofs_invalid(err, err_len,
			      "device slot %u does not exist (image has %u extra devices)", slot,
			      info.extra_devices);
		return -ERANGE;
	}
	p = slot_ptr(image, &info, slot);
	memcpy(p + SLOT_TAG, tag, EROFS_DEVICE_TAG_LEN);
	if (blocks)
		put_le32(p + SLOT_BLOCKS, blocks);
	if (info.feature_compat & EROFS_FEATURE_COMPAT_SB_CHKSUM)
		put_le32((uint8_t *)image + EROFS_SUPER_OFFSET + SB_CHECKSUM,
			 erofs_sb_compute_checksum(image));
	return 0;
}

/* Read the first block plus the device table; the table may extend past the first block
 * only for images with many devices, so 64 KiB is plenty (65535 slots would not fit, but
 * blobcache images have one). */
#define HEAD_MAX (64u * 1024)

static int read_head(int fd, uint8_t *buf, size_t *len)
{
	ssize_t n = pread_full(fd, buf, HEAD_MAX, 0);

	if (n < 0)
		return (int)n;
	*len = (size_t)n;
	return 0;
}

int erofs_file_read_sb(const char *path, struct erofs_sb_info *out, char *err, size_t err_len)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(HEAD_MAX);
	if (!buf)
		return -ENOMEM;
	r = read_head(fd, buf, &len);
	if (r < 0)
		return r;
	return erofs_sb_read(buf, len, out, err, err_len);
}

int erofs_file_set_device(const char *path, unsigned int slot, const char *tag, uint32_t blocks,
			  char *err, size_t err_len)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, done = 0;
	int r;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(HEAD_MAX);
	if (!buf)
		return -ENOMEM;
	r = read_head(fd, buf, &len);
	if (r < 0)
		return r;
	r = erofs_sb_set_device(buf, len, slot, tag, blocks, err, err_len);
	if (r < 0)
		return r;
	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}
