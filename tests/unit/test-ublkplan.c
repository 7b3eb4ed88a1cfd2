// SPDX-License-Identifier: GPL-2.0-or-later
/* The ublk front end's pure parts: a device per blob (read-only, 4 KiB blocks, sized to the
 * padded blob), what each request becomes, the mount over the devices, and the device record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/ublkplan.h"
#include "macros.h"

#define MiB (1ULL << 20)
#define D1  "1111111111111111111111111111111111111111111111111111111111111111"
#define D2  "2222222222222222222222222222222222222222222222222222222222222222"

static void device_is_the_blob_padded_to_a_block_and_read_only(void **state)
{
	struct ublk_params p;

	assert_int_equal(ublk_plan_dev_bytes(4096), 4096);
	assert_int_equal(ublk_plan_dev_bytes(4097), 8192);
	assert_int_equal(ublk_plan_dev_bytes(3 * MiB + 100), 3 * MiB + 4096);
	assert_int_equal(ublk_plan_params(3 * MiB + 100, &p), 0);
	assert_int_equal(p.types, UBLK_PARAM_TYPE_BASIC);
	assert_int_equal(p.len, sizeof(p));
	assert_true(p.basic.attrs & UBLK_ATTR_READ_ONLY);
	assert_int_equal(p.basic.logical_bs_shift, 12);
	assert_int_equal(p.basic.physical_bs_shift, 12);
	assert_int_equal(p.basic.dev_sectors, (3 * MiB + 4096) >> 9);
	assert_int_equal(p.basic.max_sectors, UBLK_IO_BUF_BYTES >> 9);
	assert_int_equal(ublk_plan_params(0, &p), -EINVAL);
	assert_int_equal(ublk_plan_params(1ULL << 60, &p), -EINVAL);
}

static void dev_info_asks_one_queue_and_a_free_number(void **state)
{
	struct ublksrv_ctrl_dev_info info;

	ublk_plan_dev_info(&info, 1234, false);
	assert_int_equal(info.nr_hw_queues, 1);
	assert_int_equal(info.queue_depth, UBLK_QUEUE_DEPTH);
	assert_int_equal(info.max_io_buf_bytes, UBLK_IO_BUF_BYTES);
	assert_int_equal(info.dev_id, UINT32_MAX);
	assert_int_equal(info.ublksrv_pid, 1234);
	assert_int_equal(info.flags, 0);
	ublk_plan_dev_info(&info, 1234, true);
	assert_int_equal(info.flags, UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE);
	assert_int_equal(info.nr_hw_queues, 1);
}

static void recovery_resumes_quiesced_devices_of_dead_servers_only(void **state)
{
	struct ublksrv_ctrl_dev_info info = { .flags = UBLK_F_USER_RECOVERY };

	info.state = UBLK_S_DEV_QUIESCED;
	assert_int_equal(ublk_plan_recovery(&info, false), UBLK_RECOVER_START);
	info.state = UBLK_S_DEV_LIVE; /* the server just died: quiescing */
	assert_int_equal(ublk_plan_recovery(&info, false), UBLK_RECOVER_WAIT);
	assert_int_equal(ublk_plan_recovery(&info, true), UBLK_RECOVER_NOT_OURS);
	info.state = UBLK_S_DEV_DEAD; /* stopped after restart_grace */
	assert_int_equal(ublk_plan_recovery(&info, false), UBLK_RECOVER_DELETE);
	info.flags = 0; /* made with restart_grace = 0: died with its server */
	info.state = UBLK_S_DEV_LIVE;
	assert_int_equal(ublk_plan_recovery(&info, false), UBLK_RECOVER_DELETE);
	assert_int_equal(ublk_plan_recovery(&info, true), UBLK_RECOVER_NOT_OURS);
}

static struct ublksrv_io_desc iod(unsigned op, uint64_t sector, uint32_t sectors)
{
	return (struct ublksrv_io_desc){ .op_flags = op,
					 .start_sector = sector,
					 .nr_sectors = sectors };
}

static void reads_inside_the_device_are_read_everything_else_is_refused(void **state)
{
	uint64_t dev = 8 * MiB, off = 0;
	uint32_t len = 0;
	int err = 0;
	struct ublksrv_io_desc d;

	d = iod(UBLK_IO_OP_READ, 8, 256);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_READ);
	assert_int_equal(off, 4096);
	assert_int_equal(len, 128 * 1024);
	/* The last block, exactly. */
	d = iod(UBLK_IO_OP_READ, (dev >> 9) - 8, 8);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_READ);
	assert_int_equal(off, dev - 4096);
	/* Past the end, empty, or bigger than a buffer. */
	d = iod(UBLK_IO_OP_READ, (dev >> 9) - 8, 16);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_FAIL);
	assert_int_equal(err, -EIO);
	d = iod(UBLK_IO_OP_READ, 0, 0);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_FAIL);
	d = iod(UBLK_IO_OP_READ, 0, (UBLK_IO_BUF_BYTES >> 9) + 8);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_FAIL);
	/* Read-only: writes fail EROFS; a flush has nothing to do. */
	d = iod(UBLK_IO_OP_WRITE, 0, 8);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_FAIL);
	assert_int_equal(err, -EROFS);
	d = iod(UBLK_IO_OP_DISCARD, 0, 8);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_FAIL);
	assert_int_equal(err, -EROFS);
	d = iod(UBLK_IO_OP_FLUSH, 0, 0);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_SUCCEED);
	d = iod(0x7f, 0, 8);
	assert_int_equal(ublk_plan_io(&d, dev, &off, &len, &err), UBLK_IO_ACTION_FAIL);
	assert_int_equal(err, -EOPNOTSUPP);
}

static void mount_names_the_meta_device_and_each_data_device_in_order(void **state)
{
	char src[64], opts[256];
	int data[] = { 4, 7 };

	assert_int_equal(ublk_plan_mount(3, data, 1, NULL, src, sizeof(src), opts, sizeof(opts)),
			 0);
	assert_string_equal(src, "/dev/ublkb3");
	assert_string_equal(opts, "device=/dev/ublkb4");
	assert_int_equal(ublk_plan_mount(3, data, 2, "noacl", src, sizeof(src), opts, sizeof(opts)),
			 0);
	assert_string_equal(opts, "device=/dev/ublkb4,device=/dev/ublkb7,noacl");
	assert_int_equal(ublk_plan_mount(0, data, 0, "", src, sizeof(src), opts, sizeof(opts)), 0);
	assert_string_equal(src, "/dev/ublkb0");
	assert_string_equal(opts, "");
	assert_int_equal(ublk_plan_mount(3, data, 2, NULL, src, sizeof(src), opts, 20),
			 -ENAMETOOLONG);
}

static void record_prints_and_parses_back(void **state)
{
	struct ublk_record in[] = {
		{ .dev_id = 0, .model = "llama", .digest = D1, .meta = true },
		{ .dev_id = 12, .model = "llama", .digest = D2, .meta = false },
	};
	_cleanup_free_ char *text = ublk_records_format(in, 2);
	struct ublk_record *out = NULL;
	size_t n = 0;
	char err[128] = "";

	assert_non_null(text);
	assert_non_null(strstr(text, "dev 12 model llama blob " D2 " data\n"));
	assert_int_equal(ublk_records_parse(text, &out, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].dev_id, 0);
	assert_true(out[0].meta);
	assert_string_equal(out[1].model, "llama");
	assert_string_equal(out[1].digest, D2);
	assert_false(out[1].meta);
	free(out);
}

static void record_with_a_bad_line_is_refused_with_its_number(void **state)
{
	struct ublk_record *out = NULL;
	size_t n = 0;
	char err[128] = "";

	assert_int_equal(ublk_records_parse("# c\ndev 1 model m blob " D1 " meta\ndev x model m "
					    "blob " D1 " meta\n",
					    &out, &n, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "line 3"));
	assert_int_equal(
		ublk_records_parse("dev 1 model m blob 12 meta\n", &out, &n, err, sizeof(err)),
		-EINVAL);
	assert_int_equal(
		ublk_records_parse("dev 1 model m blob " D1 " both\n", &out, &n, err, sizeof(err)),
		-EINVAL);
	assert_int_equal(ublk_records_parse("", &out, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(device_is_the_blob_padded_to_a_block_and_read_only),
		cmocka_unit_test(dev_info_asks_one_queue_and_a_free_number),
		cmocka_unit_test(recovery_resumes_quiesced_devices_of_dead_servers_only),
		cmocka_unit_test(reads_inside_the_device_are_read_everything_else_is_refused),
		cmocka_unit_test(mount_names_the_meta_device_and_each_data_device_in_order),
		cmocka_unit_test(record_prints_and_parses_back),
		cmocka_unit_test(record_with_a_bad_line_is_refused_with_its_number),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
