# Functional tests on the host (no kernel, no root needed).
FUNC_TESTS = tests/func/config-example.test
TESTS += $(FUNC_TESTS)
EXTRA_DIST += $(FUNC_TESTS)
TEST_EXTENSIONS += .test
TEST_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = top_srcdir=$(abs_top_srcdir) top_builddir=$(abs_top_builddir); export top_srcdir top_builddir;
