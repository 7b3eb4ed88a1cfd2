# unit tests of blobcache-kcheck's rules: version parsing, config parsing, verdicts
check_PROGRAMS += tests/unit/test-kcheck
TESTS += tests/unit/test-kcheck
tests_unit_test_kcheck_SOURCES = tests/unit/test-kcheck.c \
	kmod-helpers/kcheck-rules.c kmod-helpers/kcheck-rules.h
tests_unit_test_kcheck_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/kmod-helpers
tests_unit_test_kcheck_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_kcheck_LDADD = $(UNIT_LIBS)
