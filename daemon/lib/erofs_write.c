// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Written from the on-disk format in Linux fs/erofs/erofs_fs.h and
 * Documentation/filesystems/erofs.rst. The kernel constraints the layout below respects:
 * the root's nid fits the superblock's 16-bit field (the root is the first inode); no inode
 * crosses a block; an inline tail lies in the same block as its inode (else EFSCORRUPTED);
 * chunk indexes start 8-byte aligned after the inode; directory entries are sorted bytewise
 * across all blocks (lookups bisect), and each block holds its dirents then their names, the
 * first dirent's nameoff giving the count.
 */
#include "erofs_write.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macros.h"

#define BLK		 EROFS_W_BLOCK_SIZE
#define INODE_SIZE	 64 /* struct erofs_inode_extended */
#define INODE_ALIGN	 32 /* nid = byte offset / 32 */
#define CHUNK_INDEX_SIZE 8  /* struct erofs_inode_chunk_index */
#define DIRENT_SIZE	 12 /* struct erofs_dirent */
#define DEVT_OFFSET	 (EROFS_SUPER_OFFSET + 128)
#define INLINE_TAIL_MAX	 (BLK - INODE_SIZE)

/* i_format datalayout values */
#define LAYOUT_FLAT_PLAIN    0
#define LAYOUT_FLAT_INLINE   2
#define LAYOUT_CHUNK_BASED   4
#define I_VERSION_EXTENDED   1
#define CHUNK_FORMAT_INDEXES 0x0020

/* dirent file types (the generic FT_* values) */
#define FT_REG_FILE 1
#define FT_DIR	    2

enum node_kind {
	NODE_DIR,
	NODE_INLINE,
	NODE_CHUNKED,
};

struct node {
	char *name;
	int parent;
	enum node_kind kind;
	unsigned int mode;
	uint64_t size;
	uint8_t *data;	     /* NODE_INLINE: size bytes */
	unsigned int device; /* NODE_CHUNKED */
	uint32_t blkaddr;    /* NODE_CHUNKED: first block on the device */
	int *children;	     /* NODE_DIR */
	size_t n_children, alloc_children;
	unsigned int n_subdirs;

	/* layout, set by build */
	uint64_t pos;	       /* byte offset of the inode */
	unsigned int layout;   /* LAYOUT_* */
	uint64_t extra;	       /* bytes after the inode: inline tail or chunk indexes */
	uint32_t data_blkaddr; /* first whole block in the metadata blob (dirs, small files) */
	uint64_t data_blocks;
};

struct device {
	char tag[EROFS_DEVICE_TAG_LEN];
	uint32_t blocks;
};

struct erofs_writer {
	uint8_t uuid[16];
	unsigned int chunk_bits;
	uint64_t build_time;
	struct node *nodes;
	size_t n_nodes, alloc_nodes;
	struct device *devices;
	size_t n_devices, alloc_devices;
};

/* A directory entry as laid out: "." and ".." included. */
struct dirent_ref {
	const char *name;
	size_t len;
	int node;
	uint8_t type;
};

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int grow(void **array, size_t *alloc, size_t n, size_t elem)
{
	size_t want;
	void *p;

	if (n < *alloc)
		return 0;
	want = *alloc ? *alloc * 2 : 8;
	p = reallocarray(*array, want, elem);
	if (!p)
		return -ENOMEM;
	*array = p;
	*alloc = want;
	return 0;
}

static int add_node(struct erofs_writer *w, const struct node *n)
{
	int r = grow((void **)&w->nodes, &w->alloc_nodes, w->n_nodes, sizeof(*w->nodes));

	if (r < 0)
		return r;
	w->nodes[w->n_nodes] = *n;
	return (int)w->n_nodes++;
}

struct erofs_writer *erofs_writer_new(const uint8_t uuid[16], unsigned int chunk_bits,
				      uint64_t build_time)
{
	struct erofs_writer *w;
	struct node root = { .parent = EROFS_W_ROOT, .kind = NODE_DIR, .mode = 0755 };

	if (chunk_bits < EROFS_W_CHUNKBITS_MIN || chunk_bits > EROFS_W_CHUNKBITS_MAX)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	memcpy(w->uuid, uuid, sizeof(w->uuid));
	w->chunk_bits = chunk_bits;
	w->build_time = build_time;
	root.name = strdup("");
	if (!root.name || add_node(w, &root) < 0) {
		free(root.name);
		erofs_writer_free(w);
		return NULL;
	}
	return w;
}

void erofs_writer_free(struct erofs_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_nodes; i++) {
		free(w->nodes[i].name);
		free(w->nodes[i].data);
		free(w->nodes[i].children);
	}
	free(w->nodes);
	free(w->devices);
	free(w);
}

static int set_device(struct device *d, const char *tag, uint32_t blocks)
{
	size_t len = tag ? strlen(tag) : 0;

	if (len == 0 || len > EROFS_DEVICE_TAG_LEN || blocks == 0)
		return -EINVAL;
	memset(d->tag, 0, sizeof(d->tag));
	memcpy(d->tag, tag, len);
	d->blocks = blocks;
	return 0;
}

int erofs_writer_add_device(struct erofs_writer *w, const char *tag, uint32_t blocks)
{
	struct device d;
	int r;

	r = set_device(&d, tag, blocks);
	if (r < 0)
		return r;
	if (w->n_devices >= EROFS_W_DEVICES_MAX)
		return -E2BIG;
	r = grow((void **)&w->devices, &w->alloc_devices, w->n_devices, sizeof(*w->devices));
	if (r < 0)
		return r;
	w->devices[w->n_devices++] = d;
	return (int)w->n_devices;
}

int erofs_writer_set_device(struct erofs_writer *w, unsigned int device, const char *tag,
			    uint32_t blocks)
{
	if (device == 0 || device > w->n_devices)
		return -EINVAL;
	return set_device(&w->devices[device - 1], tag, blocks);
}

static bool name_is_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len > 0 && len <= EROFS_W_NAME_MAX && !strchr(name, '/') && !streq(name, ".") &&
	       !streq(name, "..");
}

/* Check parent and name, and link a new node under the parent. */
static int add_child(struct erofs_writer *w, int parent, const char *name, struct node *n)
{
	struct node *p;
	int id, r;

	if (parent < 0 || (size_t)parent >= w->n_nodes || w->nodes[parent].kind != NODE_DIR ||
	    !name_is_valid(name))
		return -EINVAL;
	p = &w->nodes[parent];
	for (size_t i = 0; i < p->n_children; i++)
		if (streq(w->nodes[p->children[i]].name, name))
			return -EEXIST;
	r = grow((void **)&p->children, &p->alloc_children, p->n_children, sizeof(*p->children));
	if (r < 0)
		return r;
	n->name = strdup(name);
	if (!n->name)
		return -ENOMEM;
	n->parent = parent;
	id = add_node(w, n); /* may move w->nodes: p is stale after this */
	if (id < 0) {
		free(n->name);
		return id;
	}
	p = &w->nodes[parent];
	p->children[p->n_children++] = id;
	if (n->kind == NODE_DIR)
		p->n_subdirs++;
	return id;
}

int erofs_writer_add_dir(struct erofs_writer *w, int parent, const char *name, unsigned int mode)
{
	struct node n = { .kind = NODE_DIR, .mode = mode & 07777 };

	return add_child(w, parent, name, &n);
}

int erofs_writer_add_file_inline(struct erofs_writer *w, int parent, const char *name,
				 unsigned int mode, const void *data, uint64_t size)
{
	struct node n = { .kind = NODE_INLINE, .mode = mode & 07777, .size = size };
	int r;

	if (size > SIZE_MAX || (size && !data))
		return -EINVAL;
	if (size) {
		n.data = malloc(size);
		if (!n.data)
			return -ENOMEM;
		memcpy(n.data, data, size);
	}
	r = add_child(w, parent, name, &n);
	if (r < 0)
		free(n.data);
	return r;
}

int erofs_writer_add_file_chunked(struct erofs_writer *w, int parent, const char *name,
				  unsigned int mode, uint64_t size, unsigned int device,
				  uint32_t blkaddr)
{
	struct node n = { .kind = NODE_CHUNKED,
			  .mode = mode & 07777,
			  .size = size,
			  .device = device,
			  .blkaddr = blkaddr };
	uint64_t chunk_blocks = 1ULL << (w->chunk_bits - 12);
	uint64_t chunks;

	if (size == 0 || device == 0 || device > w->n_devices)
		return -EINVAL;
	chunks = (size + (1ULL << w->chunk_bits) - 1) >> w->chunk_bits;
	if ((uint64_t)blkaddr + (chunks - 1) * chunk_blocks > UINT32_MAX - 1) /* -1: a hole */
		return -ERANGE;
	return add_child(w, parent, name, &n);
}

static uint64_t meta_blkaddr(const struct erofs_writer *w)
{
	return ALIGN_UP((uint64_t)DEVT_OFFSET + w->n_devices * EROFS_DEVT_SLOT_SIZE, BLK) / BLK;
}

/* An inode's number: its offset from the metadata area in 32-byte units. */
static uint64_t nid_of(const struct erofs_writer *w, const struct node *n)
{
	return (n->pos - meta_blkaddr(w) * BLK) / INODE_ALIGN;
}

static int dirent_cmp(const void *a, const void *b)
{
	const struct dirent_ref *x = a, *y = b;
	size_t n = MIN(x->len, y->len);
	int c = memcmp(x->name, y->name, n);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* The sorted entries of directory `id`, "." and ".." included. */
static struct dirent_ref *dir_entries(const struct erofs_writer *w, int id, size_t *n_out)
{
	const struct node *d = &w->nodes[id];
	struct dirent_ref *e = calloc(d->n_children + 2, sizeof(*e));

	if (!e)
		return NULL;
	e[0] = (struct dirent_ref){ ".", 1, id, FT_DIR };
	e[1] = (struct dirent_ref){ "..", 2, d->parent, FT_DIR };
	for (size_t i = 0; i < d->n_children; i++) {
		const struct node *c = &w->nodes[d->children[i]];

		e[i + 2] = (struct dirent_ref){ c->name, strlen(c->name), d->children[i],
						c->kind == NODE_DIR ? FT_DIR : FT_REG_FILE };
	}
	qsort(e, d->n_children + 2, sizeof(*e), dirent_cmp);
	*n_out = d->n_children + 2;
	return e;
}

/* Bytes of directory data: entries fill blocks in order, each block its dirents then their
 * names; an entry never straddles blocks. `emit` (may be NULL) writes block by block. */
static uint64_t dir_layout(const struct erofs_writer *w, const struct dirent_ref *e, size_t n,
			   uint8_t *out)
{
	uint64_t blocks = 0;
	size_t first = 0, used = 0;

	for (size_t i = 0; i <= n; i++) {
		size_t need = i < n ? DIRENT_SIZE + e[i].len : 0;

		if (i < n && used + need <= BLK) {
			used += need;
			continue;
		}
		/* entries [first, i) make one block */
		if (out) {
			uint8_t *blk = out + blocks * BLK;
			size_t nameoff = (i - first) * DIRENT_SIZE;

			for (size_t k = first; k < i; k++) {
				uint8_t *de = blk + (k - first) * DIRENT_SIZE;

				put_le64(de, nid_of(w, &w->nodes[e[k].node]));
				put_le16(de + 8, (uint16_t)nameoff);
				de[10] = e[k].type;
				memcpy(blk + nameoff, e[k].name, e[k].len);
				nameoff += e[k].len;
			}
		}
		if (i == n)
			return blocks * BLK + used;
		blocks++;
		first = i;
		used = need;
	}
	return 0; /* not reached */
}

static bool is_dot_entry(const struct dirent_ref *e)
{
	return (e->len == 1 && e->name[0] == '.') || (e->len == 2 && !memcmp(e->name, "..", 2));
}

/* Nodes in breadth-first order, each directory's children sorted by name: the root first (its
 * nid must fit 16 bits), siblings' inodes close together. */
static int *node_order(const struct erofs_writer *w)
{
	int *order = calloc(w->n_nodes, sizeof(*order));
	size_t head = 0, tail = 0;

	if (!order)
		return NULL;
	order[tail++] = EROFS_W_ROOT;
	while (head < tail) {
		int id = order[head++];
		struct dirent_ref *e;
		size_t n;

		if (w->nodes[id].kind != NODE_DIR)
			continue;
		e = dir_entries(w, id, &n);
		if (!e) {
			free(order);
			return NULL;
		}
		for (size_t i = 0; i < n; i++)
			if (!is_dot_entry(&e[i]))
				order[tail++] = e[i].node;
		free(e);
	}
	return order;
}

/* Place every inode and data block; returns the image's block count or -errno. */
static int64_t layout(struct erofs_writer *w, const int *order, char *err, size_t err_len)
{
	uint64_t pos = meta_blkaddr(w) * BLK, next;

	for (size_t i = 0; i < w->n_nodes; i++) {
		struct node *n = &w->nodes[order[i]];
		uint64_t tail = n->size % BLK, span;

		n->data_blocks = 0;
		switch (n->kind) {
		case NODE_DIR: {
			size_t cnt;
			_cleanup_free_ struct dirent_ref *e = dir_entries(w, order[i], &cnt);

			if (!e)
				return -ENOMEM;
			n->size = dir_layout(w, e, cnt, NULL);
			n->layout = LAYOUT_FLAT_PLAIN;
			n->extra = 0;
			n->data_blocks = (n->size + BLK - 1) / BLK;
			break;
		}
		case NODE_INLINE:
			if (tail && tail <= INLINE_TAIL_MAX) {
				n->layout = LAYOUT_FLAT_INLINE;
				n->extra = tail;
				n->data_blocks = n->size / BLK;
			} else {
				n->layout = LAYOUT_FLAT_PLAIN;
				n->extra = 0;
				n->data_blocks = (n->size + BLK - 1) / BLK;
			}
			break;
		case NODE_CHUNKED: {
			const struct device *d = &w->devices[n->device - 1];
			uint64_t chunks = (n->size + (1ULL << w->chunk_bits) - 1) >> w->chunk_bits;

			if (n->blkaddr + (n->size + BLK - 1) / BLK > d->blocks)
				return erofs_invalid(
					err, err_len,
					"file '%s' (%llu bytes from block %u) does not fit its "
					"device %u of %u blocks",
					n->name, (unsigned long long)n->size, n->blkaddr, n->device,
					d->blocks);
			n->layout = LAYOUT_CHUNK_BASED;
			n->extra = chunks * CHUNK_INDEX_SIZE;
			break;
		}
		}
		/* the inode, and an inline tail with it, within one block */
		span = INODE_SIZE + (n->layout == LAYOUT_FLAT_INLINE ? n->extra : 0);
		if (pos % BLK + span > BLK)
			pos = ALIGN_UP(pos, (uint64_t)BLK);
		n->pos = pos;
		pos = ALIGN_UP(pos + INODE_SIZE + n->extra, (uint64_t)INODE_ALIGN);
	}
	next = ALIGN_UP(pos, (uint64_t)BLK) / BLK;
	for (size_t i = 0; i < w->n_nodes; i++) {
		struct node *n = &w->nodes[order[i]];

		n->data_blkaddr = 0;
		if (!n->data_blocks)
			continue;
		if (next > UINT32_MAX)
			break;
		n->data_blkaddr = (uint32_t)next;
		next += n->data_blocks;
	}
	if (next > UINT32_MAX || next > SIZE_MAX / BLK) {
		erofs_invalid(err, err_len, "the metadata image would exceed %u blocks",
			      UINT32_MAX);
		return -EFBIG;
	}
	return (int64_t)next;
}

static void write_inode(const struct erofs_writer *w, const struct node *n, uint32_t ino,
			uint8_t *image)
{
	uint8_t *p = image + n->pos;
	unsigned int type = n->kind == NODE_DIR ? S_IFDIR : S_IFREG;

	put_le16(p + 0, (uint16_t)(I_VERSION_EXTENDED | n->layout << 1)); /* i_format */
	put_le16(p + 4, (uint16_t)(type | n->mode));			  /* i_mode */
	put_le64(p + 8, n->size);					  /* i_size */
	if (n->layout == LAYOUT_CHUNK_BASED)
		put_le16(p + 16, (uint16_t)((w->chunk_bits - 12) | CHUNK_FORMAT_INDEXES));
	else
		put_le32(p + 16, n->data_blkaddr); /* i_u.raw_blkaddr */
	put_le32(p + 20, ino);
	put_le64(p + 32, w->build_time); /* i_mtime; uid, gid, nsec stay 0 */
	put_le32(p + 44, n->kind == NODE_DIR ? 2 + n->n_subdirs : 1); /* i_nlink */

	if (n->layout == LAYOUT_FLAT_INLINE) {
		memcpy(p + INODE_SIZE, n->data + n->data_blocks * BLK, n->extra);
	} else if (n->layout == LAYOUT_CHUNK_BASED) {
		uint64_t chunk_blocks = 1ULL << (w->chunk_bits - 12);

		for (uint64_t k = 0; k < n->extra / CHUNK_INDEX_SIZE; k++) {
			uint8_t *idx = p + INODE_SIZE + k * CHUNK_INDEX_SIZE;

			put_le16(idx + 2, (uint16_t)n->device); /* advise stays 0 */
			put_le32(idx + 4, (uint32_t)(n->blkaddr + k * chunk_blocks));
		}
	}
	if (n->kind == NODE_INLINE && n->data_blocks)
		memcpy(image + (uint64_t)n->data_blkaddr * BLK, n->data, n->data_blocks * BLK);
}

static void write_super(const struct erofs_writer *w, uint64_t blocks, uint8_t *image)
{
	uint8_t *sb = image + EROFS_SUPER_OFFSET;
	uint32_t incompat = 0;

	for (size_t i = 0; i < w->n_nodes; i++)
		if (w->nodes[i].kind == NODE_CHUNKED)
			incompat |= EROFS_FEATURE_INCOMPAT_CHUNKED_FILE;
	if (w->n_devices)
		incompat |= EROFS_FEATURE_INCOMPAT_DEVICE_TABLE;

	put_le32(sb + 0, EROFS_SUPER_MAGIC);
	put_le32(sb + 8, EROFS_FEATURE_COMPAT_SB_CHKSUM);
	sb[12] = EROFS_FSCACHE_BLKBITS;
	put_le16(sb + 14, (uint16_t)nid_of(w, &w->nodes[EROFS_W_ROOT])); /* root_nid: 0 */
	put_le64(sb + 16, w->n_nodes);					 /* inos */
	put_le64(sb + 24, w->build_time);				 /* build_time */
	put_le32(sb + 36, (uint32_t)blocks);				 /* blocks */
	put_le32(sb + 40, (uint32_t)meta_blkaddr(w));
	memcpy(sb + 48, w->uuid, sizeof(w->uuid));
	put_le32(sb + 80, incompat);
	put_le16(sb + 86, (uint16_t)w->n_devices);
	put_le16(sb + 88, DEVT_OFFSET / EROFS_DEVT_SLOT_SIZE);
	for (size_t i = 0; i < w->n_devices; i++) {
		uint8_t *slot = image + DEVT_OFFSET + i * EROFS_DEVT_SLOT_SIZE;

		memcpy(slot, w->devices[i].tag, EROFS_DEVICE_TAG_LEN);
		put_le32(slot + 64, w->devices[i].blocks); /* mapped_blkaddr 0: by device id */
	}
	put_le32(sb + 4, erofs_sb_compute_checksum(image));
}

int erofs_writer_build(struct erofs_writer *w, uint8_t **image, size_t *len, char *err,
		       size_t err_len)
{
	_cleanup_free_ int *order = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	int64_t blocks;

	*image = NULL;
	*len = 0;
	order = node_order(w);
	if (!order)
		return -ENOMEM;
	blocks = layout(w, order, err, err_len);
	if (blocks < 0)
		return (int)blocks;
	buf = calloc((size_t)blocks, BLK);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_nodes; i++) {
		struct node *n = &w->nodes[order[i]];

		write_inode(w, n, (uint32_t)(i + 1), buf);
		if (n->kind == NODE_DIR) {
			size_t cnt;
			_cleanup_free_ struct dirent_ref *e = dir_entries(w, order[i], &cnt);

			if (!e)
				return -ENOMEM;
			dir_layout(w, e, cnt, buf + (uint64_t)n->data_blkaddr * BLK);
		}
	}
	write_super(w, (uint64_t)blocks, buf);
	*image = TAKE_PTR(buf);
	*len = (size_t)blocks * BLK;
	return 0;
}
