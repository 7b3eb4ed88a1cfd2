# unit tests of the catalogue, publish and verification
check_PROGRAMS += tests/unit/test-names tests/unit/test-parse tests/unit/test-catalogue \
	tests/unit/test-erofs tests/unit/test-erofs-write tests/unit/test-publish tests/unit/test-verify
TESTS += tests/unit/test-names tests/unit/test-parse tests/unit/test-catalogue \
	tests/unit/test-erofs tests/unit/test-erofs-write tests/unit/test-publish tests/unit/test-verify

tests_unit_test_names_SOURCES = tests/unit/test-names.c
tests_unit_test_names_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_names_LDADD = $(UNIT_LIBS)

tests_unit_test_parse_SOURCES = tests/unit/test-parse.c
tests_unit_test_parse_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_parse_LDADD = $(UNIT_LIBS)

tests_unit_test_catalogue_SOURCES = tests/unit/test-catalogue.c
tests_unit_test_catalogue_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_catalogue_LDADD = $(UNIT_LIBS)

# Running mkfs.erofs and fsck.erofs, shared by test-erofs, test-erofs-write and test-publish.
EROFS_TOOLS = tests/unit/test-erofs-tools.c tests/unit/test-erofs-tools.h

# test-erofs and test-publish run the real mkfs.erofs (erofs-utils): they fail without it.
tests_unit_test_erofs_SOURCES = tests/unit/test-erofs.c $(EROFS_TOOLS)
tests_unit_test_erofs_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_erofs_LDADD = $(UNIT_LIBS)
# test-erofs-write checks the images it writes with the real fsck.erofs: it fails without it.
tests_unit_test_erofs_write_SOURCES = tests/unit/test-erofs-write.c $(EROFS_TOOLS)
tests_unit_test_erofs_write_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_erofs_write_LDADD = $(UNIT_LIBS)

tests_unit_test_publish_SOURCES = tests/unit/test-publish.c $(EROFS_TOOLS) \
	daemon/cli/publish.c daemon/cli/publish.h \
	daemon/cli/publish_image.c \
	daemon/cli/gc.c
tests_unit_test_publish_CFLAGS = $(UNIT_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_publish_LDADD = $(UNIT_LIBS) $(CRYPTO_LIBS)

tests_unit_test_verify_SOURCES = tests/unit/test-verify.c
tests_unit_test_verify_CFLAGS = $(UNIT_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_verify_LDADD = $(UNIT_LIBS) $(CRYPTO_LIBS)
