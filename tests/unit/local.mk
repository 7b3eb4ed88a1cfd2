# cmocka unit tests, one binary per module.
if ENABLE_TESTS
UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(INIH_CFLAGS)
UNIT_LIBS = $(COMMON_LIBS) $(CMOCKA_LIBS)
include tests/unit/ctl.mk
include tests/unit/kcheck.mk
endif

if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-msg tests/unit/test-fill-plan tests/unit/test-config \
	tests/unit/test-probe
TESTS += tests/unit/test-msg tests/unit/test-fill-plan tests/unit/test-config tests/unit/test-probe
tests_unit_test_msg_SOURCES = tests/unit/test-msg.c daemon/frontend/msg.c
tests_unit_test_msg_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_msg_LDADD = $(UNIT_LIBS)
tests_unit_test_fill_plan_SOURCES = tests/unit/test-fill-plan.c daemon/core/fill.c daemon/core/loop.c daemon/core/workpool.c \
	daemon/core/chunkmap.c
tests_unit_test_fill_plan_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_fill_plan_LDADD = $(UNIT_LIBS) $(CRYPTO_LIBS) -lpthread
tests_unit_test_config_SOURCES = tests/unit/test-config.c daemon/configfile.c
tests_unit_test_config_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_config_LDADD = $(UNIT_LIBS)
endif

# Chunk presence of plain cache files, and the ublk front end's pure parts (device shape,
# request plan, mount options, device record).
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-chunkmap tests/unit/test-ublkplan tests/unit/test-cachevol
TESTS += tests/unit/test-chunkmap tests/unit/test-ublkplan tests/unit/test-cachevol
tests_unit_test_cachevol_SOURCES = tests/unit/test-cachevol.c daemon/ops/cachevol.c \
	daemon/core/loop.c daemon/core/workpool.c
tests_unit_test_cachevol_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_cachevol_LDADD = $(UNIT_LIBS) -lpthread
tests_unit_test_chunkmap_SOURCES = tests/unit/test-chunkmap.c daemon/core/chunkmap.c
tests_unit_test_chunkmap_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_chunkmap_LDADD = $(UNIT_LIBS)
tests_unit_test_ublkplan_SOURCES = tests/unit/test-ublkplan.c daemon/frontend/ublkplan.c
tests_unit_test_ublkplan_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_ublkplan_LDADD = $(UNIT_LIBS)
endif

# The HTTP origin's pure helpers (Content-Range, response checks, retry schedule, errno mapping).
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-http
TESTS += tests/unit/test-http
tests_unit_test_http_SOURCES = tests/unit/test-http.c daemon/core/http.c daemon/core/http.h
tests_unit_test_http_CFLAGS = $(UNIT_CFLAGS) $(CURL_CFLAGS)
tests_unit_test_http_LDADD = $(UNIT_LIBS)
tests_unit_test_probe_SOURCES = tests/unit/test-probe.c daemon/ops/probe.c daemon/core/loop.c
tests_unit_test_probe_CFLAGS = $(UNIT_CFLAGS) $(MHD_CFLAGS)
tests_unit_test_probe_LDADD = $(UNIT_LIBS) $(MHD_LIBS) -lpthread
endif
# The control socket, with blobcachectl's client.
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-control
TESTS += tests/unit/test-control
tests_unit_test_control_SOURCES = tests/unit/test-control.c daemon/ops/control.c daemon/core/loop.c \
	daemon/cli/ctlclient.c
tests_unit_test_control_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_control_LDADD = $(UNIT_LIBS) -lpthread
endif
EXTRA_DIST += tests/unit/test-helpers.h
# Managed mounts: the pure parts (mountinfo matching, health decisions, state file), NFS keys.
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-mounts
TESTS += tests/unit/test-mounts
tests_unit_test_mounts_SOURCES = tests/unit/test-mounts.c daemon/ops/mountpolicy.c \
	daemon/configfile.c daemon/ops/linkwatch.c daemon/core/loop.c
tests_unit_test_mounts_CFLAGS = $(UNIT_CFLAGS) $(MOUNT_CFLAGS) $(NL_CFLAGS)
tests_unit_test_mounts_LDADD = $(UNIT_LIBS) $(MOUNT_LIBS) $(NL_LIBS)
endif

# The space policy (LRU, watermarks, purge, pins, the usage file).
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-space
TESTS += tests/unit/test-space
tests_unit_test_space_SOURCES = tests/unit/test-space.c daemon/core/spacepolicy.c
tests_unit_test_space_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_space_LDADD = $(UNIT_LIBS)
endif

# The cache scan: the walk of cachefiles' store and applying its list to the usage records.
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-spacescan
TESTS += tests/unit/test-spacescan
tests_unit_test_spacescan_SOURCES = tests/unit/test-spacescan.c daemon/core/spacescan.c
tests_unit_test_spacescan_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_spacescan_LDADD = $(UNIT_LIBS)
endif
# The space manager in its loop: the walk in the scan thread, a stop with a walk in flight.
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-space-loop
TESTS += tests/unit/test-space-loop
tests_unit_test_space_loop_SOURCES = tests/unit/test-space-loop.c daemon/core/space.c \
	daemon/core/spacescan.c daemon/core/spacepolicy.c daemon/core/models.c \
	daemon/core/mountinfo.c daemon/configfile.c
tests_unit_test_space_loop_CFLAGS = $(UNIT_CFLAGS) $(MOUNT_CFLAGS)
tests_unit_test_space_loop_LDADD = $(FILLCORE_LIBS) $(UNIT_LIBS) $(MOUNT_LIBS)
endif

# Re-published models: retained versions (core), records of name-keyed cache files and the
# decision at a metadata OPEN (on-demand front end), mountinfo option matching.
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-records tests/unit/test-models
TESTS += tests/unit/test-records tests/unit/test-models
tests_unit_test_records_SOURCES = tests/unit/test-records.c daemon/frontend/ondemand_records.c \
	daemon/core/mountinfo.c
tests_unit_test_records_CFLAGS = $(UNIT_CFLAGS) $(MOUNT_CFLAGS)
tests_unit_test_records_LDADD = $(UNIT_LIBS) $(MOUNT_LIBS)
tests_unit_test_models_SOURCES = tests/unit/test-models.c daemon/core/models.c \
	daemon/core/mountinfo.c
tests_unit_test_models_CFLAGS = $(UNIT_CFLAGS) $(MOUNT_CFLAGS)
tests_unit_test_models_LDADD = $(UNIT_LIBS) $(MOUNT_LIBS)
endif

# mount.blobcache: the helper's command line and -o options.
if ENABLE_TESTS
check_PROGRAMS += tests/unit/test-mountopts
TESTS += tests/unit/test-mountopts
tests_unit_test_mountopts_SOURCES = tests/unit/test-mountopts.c daemon/cli/mountopts.c
tests_unit_test_mountopts_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_mountopts_LDADD = $(UNIT_LIBS)
endif
