# unit tests of the catalogue and publish
check_PROGRAMS += tests/unit/test-names tests/unit/test-parse tests/unit/test-catalogue \
	tests/unit/test-erofs
TESTS += tests/unit/test-names tests/unit/test-parse tests/unit/test-catalogue \
	tests/unit/test-erofs

tests_unit_test_names_SOURCES = tests/unit/test-names.c
tests_unit_test_names_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_names_LDADD = $(UNIT_LIBS)

tests_unit_test_parse_SOURCES = tests/unit/test-parse.c
tests_unit_test_parse_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_parse_LDADD = $(UNIT_LIBS)

tests_unit_test_catalogue_SOURCES = tests/unit/test-catalogue.c
tests_unit_test_catalogue_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_catalogue_LDADD = $(UNIT_LIBS)

# test-erofs and test-publish run the real mkfs.erofs (erofs-utils): they fail without it.
tests_unit_test_erofs_SOURCES = tests/unit/test-erofs.c
tests_unit_test_erofs_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_erofs_LDADD = $(UNIT_LIBS)
