# cmocka unit tests, one binary per module.
if ENABLE_TESTS
UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(INIH_CFLAGS)
UNIT_LIBS = $(COMMON_LIBS) $(CMOCKA_LIBS)
include tests/unit/ctl.mk
endif
