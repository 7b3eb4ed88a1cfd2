// SPDX-License-Identifier: GPL-2.0-or-later
#include "frontend/ublkplan.h"

#include <stdarg.h>

#include "macros.h"

#define BLOCK (1ULL << UBLK_BLOCK_SHIFT)
/* dev_sectors is in 512-byte units; keep far below what the kernel's sector_t takes. */
#define DEV_BYTES_MAX (1ULL << 50)

uint64_t ublk_plan_dev_bytes(uint64_t blob_size)
{
	return ALIGN_UP(blob_size, BLOCK);
}

void ublk_plan_dev_info(struct ublksrv_ctrl_dev_info *info, int pid, bool recovery)
{
	memset(info, 0, sizeof(*info));
	info->nr_hw_queues = 1;
	info->queue_depth = UBLK_QUEUE_DEPTH;
	info->max_io_buf_bytes = UBLK_IO_BUF_BYTES;
	info->dev_id = UINT32_MAX; /* the kernel picks a free number */
	info->ublksrv_pid = pid;
	info->flags = recovery ? UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE : 0;
}

enum ublk_recovery_action ublk_plan_recovery(const struct ublksrv_ctrl_dev_info *info,
					     bool server_alive)
{
	if (!(info->flags & UBLK_F_USER_RECOVERY))
		return server_alive ? UBLK_RECOVER_NOT_OURS : UBLK_RECOVER_DELETE;
	switch (info->state) {
	case UBLK_S_DEV_QUIESCED:
		return UBLK_RECOVER_START;
	case UBLK_S_DEV_LIVE:
		/* The kernel quiesces a device once the io_uring of its dead server is gone. */
		return server_alive ? UBLK_RECOVER_NOT_OURS : UBLK_RECOVER_WAIT;
	default: /* UBLK_S_DEV_DEAD: stopped (by the holder after restart_grace, or never started)
		  */
		return server_alive ? UBLK_RECOVER_NOT_OURS : UBLK_RECOVER_DELETE;
	}
}

int ublk_plan_params(uint64_t blob_size, struct ublk_params *p)
{
	uint64_t bytes = ublk_plan_dev_bytes(blob_size);

	if (blob_size == 0 || bytes > DEV_BYTES_MAX)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->len = sizeof(*p);
	p->types = UBLK_PARAM_TYPE_BASIC;
	p->basic.attrs = UBLK_ATTR_READ_ONLY;
	p->basic.logical_bs_shift = UBLK_BLOCK_SHIFT;
	p->basic.physical_bs_shift = UBLK_BLOCK_SHIFT;
	p->basic.io_min_shift = UBLK_BLOCK_SHIFT;
	p->basic.io_opt_shift = UBLK_BLOCK_SHIFT;
	p->basic.max_sectors = UBLK_IO_BUF_BYTES >> 9;
	p->basic.dev_sectors = bytes >> 9;
	return 0;
}

enum ublk_io_action ublk_plan_io(const struct ublksrv_io_desc *iod, uint64_t dev_bytes,
				 uint64_t *off, uint32_t *len, int *err)
{
	uint64_t o, l;

	switch (ublksrv_get_op(iod)) {
	case UBLK_IO_OP_READ:
		o = iod->start_sector << 9;
		l = (uint64_t)iod->nr_sectors << 9;
		if (l == 0 || l > UBLK_IO_BUF_BYTES || o >= dev_bytes || l > dev_bytes - o) {
			*err = -EIO;
			return UBLK_IO_ACTION_FAIL;
		}
		*off = o;
		*len = (uint32_t)l;
		return UBLK_IO_ACTION_READ;
	case UBLK_IO_OP_FLUSH:
		return UBLK_IO_ACTION_SUCCEED; /* nothing is ever written */
	case UBLK_IO_OP_WRITE:
	case UBLK_IO_OP_DISCARD:
	case UBLK_IO_OP_WRITE_SAME:
	case UBLK_IO_OP_WRITE_ZEROES:
		*err = -EROFS;
		return UBLK_IO_ACTION_FAIL;
	default:
		*err = -EOPNOTSUPP;
		return UBLK_IO_ACTION_FAIL;
	}
}

static int append(char *buf, size_t len, size_t *pos, const char *fmt, ...) _printf_(4, 5);
static int append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *pos)
		return -ENAMETOOLONG;
	*pos += (size_t)n;
	return 0;
}

int ublk_plan_mount(int meta_id, const int *data_ids, size_t n, const char *extra, char *source,
		    size_t source_len, char *options, size_t options_len)
{
	size_t pos = 0;
	int r;

	if (source_len == 0 || options_len == 0)
		return -ENAMETOOLONG;
	options[0] = '\0';
	r = snprintf(source, source_len, "/dev/ublkb%d", meta_id);
	if (r < 0 || (size_t)r >= source_len)
		return -ENAMETOOLONG;
	/* Each device= takes the next slot of the image's device table (fs/erofs/super.c). */
	for (size_t i = 0; i < n; i++) {
		r = append(options, options_len, &pos, "%sdevice=/dev/ublkb%d", i ? "," : "",
			   data_ids[i]);
		if (r < 0)
			return r;
	}
	if (extra && *extra)
		return append(options, options_len, &pos, "%s%s", pos ? "," : "", extra);
	return 0;
}

char *ublk_records_format(const struct ublk_record *r, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	fprintf(f, "# ublk devices of blobcached: dev ID model NAME blob DIGEST meta|data\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "dev %d model %s blob %s %s\n", r[i].dev_id, r[i].model, r[i].digest,
			r[i].meta ? "meta" : "data");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int parse_line(char *line, struct ublk_record *rec)
{
	char *save = NULL, *w[7];
	size_t n = 0;
	char *end;
	long id;

	for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == ARRAY_SIZE(w))
			return -EINVAL;
		w[n++] = t;
	}
	if (n != 7 || !streq(w[0], "dev") || !streq(w[2], "model") || !streq(w[4], "blob"))
		return -EINVAL;
	errno = 0;
	id = strtol(w[1], &end, 10);
	if (errno || *end || end == w[1] || id < 0 || id > INT32_MAX)
		return -EINVAL;
	if (!name_is_valid_model(w[3], strlen(w[3])) || !name_is_digest(w[5], strlen(w[5])))
		return -EINVAL;
	if (!streq(w[6], "meta") && !streq(w[6], "data"))
		return -EINVAL;
	rec->dev_id = (int)id;
	snprintf(rec->model, sizeof(rec->model), "%s", w[3]);
	snprintf(rec->digest, sizeof(rec->digest), "%s", w[5]);
	rec->meta = streq(w[6], "meta");
	return 0;
}

int ublk_records_parse(const char *text, struct ublk_record **out, size_t *n, char *err,
		       size_t err_len)
{
	_cleanup_free_ char *copy = strdup(text);
	_cleanup_free_ struct ublk_record *recs = NULL;
	size_t count = 0, cap = 0, line_no = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line_no++; /* blank lines are skipped by strtok_r: numbers count non-empty lines */
		line += strspn(line, " \t");
		if (!*line || *line == '#')
			continue;
		if (count == cap) {
			size_t c = cap ? cap * 2 : 8;
			struct ublk_record *t = realloc(recs, c * sizeof(*t));
			if (!t)
				return -ENOMEM;
			recs = t;
			cap = c;
		}
		if (parse_line(line, &recs[count]) < 0) {
			if (err_len)
				snprintf(err, err_len,
					 "line %zu: expected 'dev ID model NAME blob DIGEST "
					 "meta|data'",
					 line_no);
			return -EINVAL;
		}
		count++;
	}
	*out = TAKE_PTR(recs);
	*n = count;
	return 0;
}
