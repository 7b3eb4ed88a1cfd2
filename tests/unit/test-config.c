// SPDX-License-Identifier: GPL-2.0-or-later
/* Configuration: defaults, every key type, errors that name the line, print -> parse round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <syslog.h>

#include "configfile.h"

static void defaults_are_sane_and_need_an_origin(void **state)
{
	struct config c;
	char err[256];

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(c.chunk_size, 1 << 20);
	assert_int_equal(c.request_timeout_ms, 30000);
	assert_true(c.bstop < c.bcull && c.bcull < c.brun);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[origin] path"));
	assert_non_null(strstr(err, "[origin] url"));
	assert_null(c.origin_url);
	assert_true(c.tls_verify);
	assert_int_equal(c.max_connections, 8);
	assert_int_equal(c.retries, 3);
	config_free(&c);
}

static void full_file_parses(void **state)
{
	const char *text = "# comment\n"
			   "[cache]\n"
			   "dir = /srv/cache\n"
			   "tag = mytag\n"
			   "brun = 20%\n"
			   "bcull = 15\n"
			   "bstop = 5%\n"
			   "[origin]\n"
			   "path = /mnt/nfs/models\n"
			   "[daemon]\n"
			   "catalogue = /etc/blobcached/models.d\n"
			   "workers = 16\n"
			   "chunk_size = 4M\n"
			   "readahead = 0\n"
			   "inflight = 4\n"
			   "verify_threads = 3\n"
			   "request_timeout = 1500ms\n"
			   "log_level = debug\n";
	struct config c;
	char err[256] = "";

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(config_parse_text(&c, text, "t.conf", err, sizeof(err)), 0);
	assert_string_equal(c.cache_dir, "/srv/cache");
	assert_string_equal(c.cache_tag, "mytag");
	assert_int_equal(c.brun, 20);
	assert_int_equal(c.bcull, 15);
	assert_int_equal(c.bstop, 5);
	assert_string_equal(c.origin_path, "/mnt/nfs/models");
	assert_string_equal(c.catalogue_dir, "/etc/blobcached/models.d");
	assert_int_equal(c.workers, 16);
	assert_int_equal(c.chunk_size, 4 << 20);
	assert_int_equal(c.readahead, 0);
	assert_int_equal(c.inflight, 4);
	assert_int_equal(c.verify_threads, 3);
	assert_int_equal(c.request_timeout_ms, 1500);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	config_free(&c);
}

static void expect_error(const char *text, const char *needle)
{
	struct config c;
	char err[256] = "";

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(config_parse_text(&c, text, "t.conf", err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not contain '%s'", err, needle);
	config_free(&c);
}

static void errors_name_file_line_and_fix(void **state)
{
	expect_error("[cache]\ndir = /x\nbogus = 1\n", "t.conf:3: unknown key 'bogus' in [cache]");
	expect_error("[nope]\nx = 1\n", "t.conf:2: unknown section [nope]");
	expect_error("[daemon]\nchunk_size = 3M\n",
		     "t.conf:2: [daemon] chunk_size = '3M': expected a power of two");
	expect_error("[daemon]\nchunk_size = 1K\n", "power of two from 4K");
	expect_error("[daemon]\nworkers = 0\n", "t.conf:2: [daemon] workers = '0'");
	expect_error("[daemon]\nreadahead = 2G\n",
		     "t.conf:2: [daemon] readahead = '2G': expected a size");
	expect_error("[daemon]\ninflight = 0\n", "inflight = '0'");
	expect_error("[daemon]\nverify_threads = 65\n", "verify_threads = '65'");
	expect_error("[daemon]\nworkers = 10%\n", "workers");
	expect_error("[daemon]\nrequest_timeout = 5 parsecs\n", "expected a duration");
	expect_error("[daemon]\nrequest_timeout = 50ms\n", "from 100ms");
	expect_error("[daemon]\nlog_level = loud\n", "expected error, warning");
	expect_error("[cache]\nbrun = 100%\n", "brun");
	expect_error("[cache]\n\ndir =\n", "t.conf:3: [cache] dir must not be empty");
	expect_error("[cache]\nthis line has no equals\n", "t.conf:2: syntax error");
}

static void frontend_defaults_to_auto_parses_and_prints_back(void **state)
{
	static const char *const names[] = { "auto", "ondemand", "ublk" };
	struct config c;
	char err[256] = "", *text = NULL, line[64];
	size_t len = 0;
	FILE *f;

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(c.frontend, CONFIG_FRONTEND_AUTO);
	config_free(&c);
	for (size_t i = 0; i < 3; i++) {
		snprintf(line, sizeof(line), "[daemon]\nfrontend = %s\n", names[i]);
		assert_int_equal(config_init_defaults(&c), 0);
		assert_int_equal(config_parse_text(&c, line, "t.conf", err, sizeof(err)), 0);
		assert_int_equal(c.frontend, (int)i);
		assert_string_equal(config_frontend_name(c.frontend), names[i]);
		f = open_memstream(&text, &len);
		config_print(&c, f);
		fclose(f);
		snprintf(line, sizeof(line), "frontend = %s\n", names[i]);
		assert_non_null(strstr(text, line));
		free(text);
		text = NULL;
		config_free(&c);
	}
	expect_error("[daemon]\nfrontend = nbd\n",
		     "t.conf:2: [daemon] frontend = 'nbd': expected auto, ondemand or ublk");
}

static void http_origin_keys_parse(void **state)
{
	const char *text = "[origin]\n"
			   "url = https://models.example.com:8443/store/\n"
			   "token_file = /etc/blobcached/token\n"
			   "ca_file = /etc/ssl/ca.pem\n"
			   "ca_path = /etc/ssl/certs\n"
			   "tls_verify = no\n"
			   "proxy = http://127.0.0.1:65001\n"
			   "no_proxy = localhost,.internal\n"
			   "max_connections = 16\n"
			   "retries = 0\n";
	struct config c;
	char err[256] = "";

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(config_parse_text(&c, text, "t.conf", err, sizeof(err)), 0);
	assert_string_equal(c.origin_url, "https://models.example.com:8443/store/");
	assert_null(c.origin_path);
	assert_string_equal(c.token_file, "/etc/blobcached/token");
	assert_null(c.basic_auth_file);
	assert_string_equal(c.ca_file, "/etc/ssl/ca.pem");
	assert_string_equal(c.ca_path, "/etc/ssl/certs");
	assert_false(c.tls_verify);
	assert_string_equal(c.proxy, "http://127.0.0.1:65001");
	assert_string_equal(c.no_proxy, "localhost,.internal");
	assert_int_equal(c.max_connections, 16);
	assert_int_equal(c.retries, 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	config_free(&c);
}

static void expect_invalid(const char *text, const char *needle)
{
	struct config c;
	char err[512] = "";

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(config_parse_text(&c, text, "t.conf", err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not contain '%s'", err, needle);
	config_free(&c);
}

/* [cache] domain: "blobcache" by default, any model-like name, or off; the volume of a model's
 * own domain_id= wins over it; bad names and a model of the domain's name are refused. */
static void domain_defaults_parses_and_is_validated(void **state)
{
	struct config c;
	char err[512] = "", vol[128];

	(void)state;
	assert_int_equal(config_init_defaults(&c), 0);
	assert_string_equal(config_domain(&c), "blobcache");
	assert_int_equal(config_parse_text(&c,
					   "[origin]\npath = /o\n[model a]\n[model b]\n"
					   "options = device=x,domain_id=own\n",
					   "t.conf", err, sizeof(err)),
			 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	config_model_volume(&c, "a", vol, sizeof(vol));
	assert_string_equal(vol, "erofs,blobcache");
	config_model_volume(&c, "b", vol, sizeof(vol));
	assert_string_equal(vol, "erofs,own");
	config_model_volume(&c, "not-configured", vol, sizeof(vol));
	assert_string_equal(vol, "erofs,blobcache");
	assert_int_equal(
		config_parse_text(&c, "[cache]\ndomain = off\n", "t.conf", err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_null(config_domain(&c));
	config_model_volume(&c, "a", vol, sizeof(vol));
	assert_string_equal(vol, "erofs,a");
	config_model_volume(&c, "b", vol, sizeof(vol));
	assert_string_equal(vol, "erofs,own");
	assert_int_equal(
		config_parse_text(&c, "[cache]\ndomain = team-1.x\n", "t.conf", err, sizeof(err)),
		0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_string_equal(config_domain(&c), "team-1.x");
	config_free(&c);

	expect_invalid("[origin]\npath = /o\n[cache]\ndomain = a/b\n",
		       "[cache] domain = 'a/b': expected off, or a name");
	expect_invalid("[origin]\npath = /o\n[cache]\ndomain = -x\n", "e.g. blobcache");
	expect_error("[cache]\ndomain = \n", "t.conf:2: [cache] domain must not be empty");
	expect_invalid("[origin]\npath = /o\n[cache]\ndomain = with space\n",
		       "[cache] domain = 'with space'");
	expect_invalid("[origin]\npath = /o\n[cache]\ndomain = "
		       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
		       "not a 64-hex digest");
	expect_invalid("[origin]\npath = /o\n[cache]\ndomain = shared\n[model shared]\npin = yes\n",
		       "[model shared] has the name of [cache] domain");
}

static void http_origin_keys_are_validated(void **state)
{
	expect_invalid("[origin]\npath = /o\nurl = http://h/\n", "choose one origin");
	expect_invalid("[origin]\nurl = file:///srv/origin\n", "expected http://");
	expect_invalid("[origin]\nurl = ftp://h/\n", "expected http://");
	expect_invalid("[origin]\nurl = http:///path\n", "expected http://");
	expect_invalid("[origin]\nurl = /srv/origin\n", "expected http://");
	expect_invalid("[origin]\nurl = http://h/a b\n", "no spaces");
	expect_invalid("[origin]\nurl = http://h/?x=1\n", "query");
	expect_invalid("[origin]\nurl = http://h/\ntoken_file = /t\nbasic_auth_file = /b\n",
		       "choose one");
	expect_invalid("[origin]\nurl = http://h/\ntoken_file = token\n",
		       "token_file must be an absolute path");
	expect_invalid("[origin]\nurl = http://h/\nca_path = certs\n", "ca_path must be");
	expect_error("[origin]\ntls_verify = maybe\n", "t.conf:2: [origin] tls_verify = 'maybe': "
						       "expected yes or no");
	expect_error("[origin]\nmax_connections = 0\n", "[origin] max_connections = '0'");
	expect_error("[origin]\nretries = 11\n", "[origin] retries = '11'");
	expect_error("[origin]\nurl =\n", "[origin] url must not be empty");
}

static void model_sections_parse_validate_and_print(void **state)
{
	struct config a, b;
	char err[256] = "";
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0;
	const struct model_conf *m;
	FILE *f;

	assert_int_equal(config_init_defaults(&a), 0);
	assert_int_equal(
		config_parse_text(&a,
				  "[origin]\npath = /srv/o\n"
				  "[model llama-7b]\nmount = /models/llama-7b\npin = yes\n"
				  "[model bert]\noptions = domain_id=shared\npreload = yes\n"
				  "[model llama-7b]\npin = no\n",
				  "t", err, sizeof(err)),
		0);
	assert_int_equal(config_validate(&a, err, sizeof(err)), 0);
	assert_int_equal(a.n_models, 2);
	m = config_find_model(&a, "llama-7b");
	assert_non_null(m);
	assert_string_equal(m->mount, "/models/llama-7b");
	assert_false(m->pin); /* the later section wins key by key */
	assert_false(m->preload);
	m = config_find_model(&a, "bert");
	assert_true(m->preload);
	assert_non_null(m);
	assert_null(m->mount);
	assert_string_equal(m->options, "domain_id=shared");
	assert_null(config_find_model(&a, "gpt"));
	f = open_memstream(&text, &len);
	config_print(&a, f);
	fclose(f);
	assert_int_equal(config_init_defaults(&b), 0);
	assert_int_equal(config_parse_text(&b, text, "printed", err, sizeof(err)), 0);
	f = open_memstream(&text2, &len2);
	config_print(&b, f);
	fclose(f);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	config_free(&a);
	config_free(&b);

	expect_error("[model ../x]\npin = yes\n", "[model ../x]: not a valid model name");
	expect_error("[model]\npin = yes\n", "[model] needs a name");
	expect_error("[model a]\nmount = models/a\n", "t.conf:2: [model a] mount = 'models/a'");
	expect_error("[model a]\npin = maybe\n", "expected yes or no");
	expect_error("[model a]\npreload = sometimes\n",
		     "[model a] preload = 'sometimes': expected yes or no");
	expect_error("[model a]\noptions = fsid=b\n", "fsid= is the model name");
	expect_error("[model a]\nsize = 3\n", "unknown key 'size' in [model a]");

	assert_int_equal(config_init_defaults(&a), 0);
	assert_int_equal(config_parse_text(&a,
					   "[origin]\npath = /o\n[model a]\nmount = /m\n"
					   "[model b]\nmount = /m\n",
					   "t", err, sizeof(err)),
			 0);
	assert_int_equal(config_validate(&a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "same mount point /m"));
	config_free(&a);
}

static void http_config_prints_back_identically(void **state)
{
	struct config a, b;
	char err[256] = "";
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *f;

	assert_int_equal(config_init_defaults(&a), 0);
	assert_int_equal(
		config_parse_text(&a,
				  "[origin]\nurl = http://10.0.0.1:8080\n"
				  "basic_auth_file = /etc/b\ntls_verify = off\nretries = 5\n",
				  "t", err, sizeof(err)),
		0);
	assert_int_equal(config_validate(&a, err, sizeof(err)), 0);
	f = open_memstream(&text, &len);
	config_print(&a, f);
	fclose(f);
	/* Unset keys are printed as comments, so that the output parses. */
	assert_non_null(strstr(text, "#path =\t; not set\n"));
	assert_non_null(strstr(text, "tls_verify = no\n"));
	assert_int_equal(config_init_defaults(&b), 0);
	assert_int_equal(config_parse_text(&b, text, "printed", err, sizeof(err)), 0);
	assert_int_equal(config_validate(&b, err, sizeof(err)), 0);
	f = open_memstream(&text2, &len2);
	config_print(&b, f);
	fclose(f);
	assert_string_equal(text, text2);
	assert_string_equal(b.origin_url, "http://10.0.0.1:8080");
	assert_string_equal(b.basic_auth_file, "/etc/b");
	assert_null(b.origin_path);
	assert_null(b.token_file);
	assert_false(b.tls_verify);
	assert_int_equal(b.retries, 5);
	free(text);
	free(text2);
	config_free(&a);
	config_free(&b);
}

static void limits_order_is_checked(void **state)
{
	struct config c;
	char err[256] = "";

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(config_parse_text(&c, "[origin]\npath=/o\n[cache]\nbcull = 12\n", "t", err,
					   sizeof(err)),
			 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bstop < bcull < brun"));
	config_free(&c);
}

static void relative_paths_are_refused(void **state)
{
	struct config c;
	char err[256] = "";

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(
		config_parse_text(&c, "[origin]\npath = relative/dir\n", "t", err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "absolute"));
	config_free(&c);
}

static void watermarks_parse_and_are_checked_against_the_kernel_limits(void **state)
{
	struct config c;
	char err[512] = "";

	assert_int_equal(config_init_defaults(&c), 0);
	assert_int_equal(c.high_watermark, 90);
	assert_int_equal(c.low_watermark, 80);
	assert_int_equal(c.purge_unused_after_ms, 0);
	assert_int_equal(config_parse_text(&c,
					   "[origin]\npath=/o\n[cache]\nhigh_watermark=50%\n"
					   "low_watermark=20\ncull_interval=300ms\n"
					   "purge_unused_after=7d\npurge_check_every=10m\n",
					   "t", err, sizeof(err)),
			 0);
	assert_int_equal(c.high_watermark, 50);
	assert_int_equal(c.low_watermark, 20);
	assert_int_equal(c.cull_interval_ms, 300);
	assert_int_equal(c.purge_unused_after_ms, 7ULL * 86400000);
	assert_int_equal(c.purge_check_every_ms, 600000);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	config_free(&c);

	expect_invalid("[origin]\npath=/o\n[cache]\nhigh_watermark=50\nlow_watermark=50\n",
		       "low_watermark < high_watermark");
	/* bstop 3%: at 97% used the kernel refuses writes */
	expect_invalid("[origin]\npath=/o\n[cache]\nhigh_watermark=97\n",
		       "set high_watermark below 97%");
	expect_error("[cache]\ncull_interval=10ms\n", "from 100ms to 1h");
	expect_error("[cache]\npurge_unused_after=4000d\n", "from 0 to 3650d");
}

static void printed_config_parses_back_identically(void **state)
{
	struct config a, b;
	char err[256] = "";
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *f;

	assert_int_equal(config_init_defaults(&a), 0);
	assert_int_equal(config_parse_text(&a,
					   "[origin]\npath=/o\n[daemon]\nchunk_size=64K\n"
					   "request_timeout=2m\nlog_level=warning\n",
					   "t", err, sizeof(err)),
			 0);
	f = open_memstream(&text, &len);
	config_print(&a, f);
	fclose(f);
	assert_int_equal(config_init_defaults(&b), 0);
	assert_int_equal(config_parse_text(&b, text, "printed", err, sizeof(err)), 0);
	f = open_memstream(&text2, &len2);
	config_print(&b, f);
	fclose(f);
	assert_string_equal(text, text2);
	assert_int_equal(b.chunk_size, 64 << 10);
	assert_int_equal(b.request_timeout_ms, 120000);
	assert_int_equal(b.log_level, LOG_WARNING);
	free(text);
	free(text2);
	config_free(&a);
	config_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_sane_and_need_an_origin),
		cmocka_unit_test(full_file_parses),
		cmocka_unit_test(errors_name_file_line_and_fix),
		cmocka_unit_test(frontend_defaults_to_auto_parses_and_prints_back),
		cmocka_unit_test(http_origin_keys_parse),
		cmocka_unit_test(http_origin_keys_are_validated),
		cmocka_unit_test(domain_defaults_parses_and_is_validated),
		cmocka_unit_test(http_config_prints_back_identically),
		cmocka_unit_test(model_sections_parse_validate_and_print),
		cmocka_unit_test(limits_order_is_checked),
		cmocka_unit_test(relative_paths_are_refused),
		cmocka_unit_test(printed_config_parses_back_identically),
		cmocka_unit_test(watermarks_parse_and_are_checked_against_the_kernel_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
