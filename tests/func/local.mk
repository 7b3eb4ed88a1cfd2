# Functional tests on the host (no kernel, no root needed).
FUNC_TESTS = tests/func/config-example.test tests/func/metrics-parse.test tests/func/gc.test \
	tests/func/publish-output.test
# The Kubernetes example (conf/kubernetes) against the API types and the daemon's configuration.
FUNC_TESTS += tests/func/kubernetes-manifests.test
EXTRA_DIST += tests/func/kubernetes-manifests.py
TESTS += $(FUNC_TESTS)
EXTRA_DIST += $(FUNC_TESTS)
TEST_EXTENSIONS += .test
TEST_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = top_srcdir=$(abs_top_srcdir) top_builddir=$(abs_top_builddir); export top_srcdir top_builddir;

# The HTTP origin against a fault-injecting server: origin-fetch drives the real origin code.
FUNC_TESTS += tests/func/http-origin.test
EXTRA_DIST += tests/func/httpd-faults.py
check_PROGRAMS += tests/func/origin-fetch
tests_func_origin_fetch_SOURCES = tests/func/origin-fetch.c daemon/core/origin_http.c daemon/core/http.c \
	daemon/core/loop.c daemon/configfile.c
tests_func_origin_fetch_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS) $(CURL_CFLAGS)
tests_func_origin_fetch_LDADD = $(COMMON_LIBS) $(CURL_LIBS)
