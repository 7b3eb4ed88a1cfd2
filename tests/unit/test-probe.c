// SPDX-License-Identifier: GPL-2.0-or-later
/* Readiness decisions, the metrics text of the probe endpoint, and the endpoint itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "core/loop.h"

#include "ops/probe.h"

static struct fill_stats fs;
static struct ondemand_stats os;

static struct probe_source source(void)
{
	struct probe_source s = {
		.fill = &fs, .ondemand = &os, .request_timeout_ms = 30000, .bound = true
	};
	return s;
}

static int reset(void **state)
{
	memset(&fs, 0, sizeof(fs));
	memset(&os, 0, sizeof(os));
	return 0;
}

static void ready_when_bound_and_nothing_wrong(void **state)
{
	struct probe_source s = source();
	char why[256];

	assert_true(probe_ready(&s, 1000, why, sizeof(why)));
	assert_string_equal(why, "");
}

static void unready_when_not_bound(void **state)
{
	struct probe_source s = source();
	char why[256];

	s.bound = false;
	assert_false(probe_ready(&s, 1000, why, sizeof(why)));
	assert_non_null(strstr(why, "not bound"));
}

static void unready_while_a_request_is_past_its_deadline(void **state)
{
	struct probe_source s = source();
	char why[256];

	fs.oldest_request_age_ms = 29999;
	assert_true(probe_ready(&s, 1000, why, sizeof(why)));
	fs.oldest_request_age_ms = 30000;
	assert_false(probe_ready(&s, 1000, why, sizeof(why)));
	assert_non_null(strstr(why, "past its 30000 ms deadline"));
}

static void unready_while_the_origin_fails_and_ready_after_a_good_fetch(void **state)
{
	struct probe_source s = source();
	char why[256];

	fs.origin_last_ok_ms = 100;
	fs.origin_last_error_ms = 200;
	assert_false(probe_ready(&s, 1200, why, sizeof(why)));
	assert_non_null(strstr(why, "origin failing: its last fetch failed 1000 ms ago"));
	fs.origin_last_ok_ms = 300;
	assert_true(probe_ready(&s, 1200, why, sizeof(why)));
}

static void all_reasons_are_listed(void **state)
{
	struct probe_source s = source();
	char why[512];

	s.bound = false;
	fs.oldest_request_age_ms = 40000;
	fs.origin_last_error_ms = 5;
	assert_false(probe_ready(&s, 10, why, sizeof(why)));
	assert_non_null(strstr(why, "not bound\n"));
	assert_non_null(strstr(why, "deadline\n"));
	assert_non_null(strstr(why, "origin failing"));
	/* A tiny buffer truncates, never overflows. */
	assert_false(probe_ready(&s, 10, why, 8));
	assert_true(strlen(why) < 8);
}

/* A model is ready when every byte is cached and, if the daemon mounts it, that mount works. */
static void model_ready_needs_all_bytes_and_a_working_managed_mount(void **state)
{
	struct probe_model m = { .name = "m", .size = 8192, .cached = 4096, .preload = "running" };

	assert_false(probe_model_ready(&m));
	m.cached = 8192;
	assert_true(probe_model_ready(&m));
	m.mount = "/models/m";
	assert_false(probe_model_ready(&m));
	m.mount_up = true;
	assert_true(probe_model_ready(&m));
	m.size = m.cached = 0; /* nothing known of it: never ready */
	assert_false(probe_model_ready(&m));
}

static char *format_models(const struct probe_model *models, size_t n, bool one)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	probe_format_models(models, n, one, f);
	fclose(f);
	return buf;
}

/* The JSON: fraction, ready, mount (escaped) or null, preload; a list or one object. */
static void models_json_lists_figures_and_escapes_paths(void **state)
{
	struct probe_model ms[2] = {
		{ .name = "a", .size = 4096, .cached = 1024, .preload = "running" },
		{ .name = "b",
		  .size = 100,
		  .cached = 200,
		  .mount = "/m/\"q\"\\x\n",
		  .mount_up = true,
		  .pinned = true },
	};
	char *one = format_models(ms, 1, true), *all = format_models(ms, 2, false), *none;

	assert_string_equal(one, "{\"name\": \"a\", \"ready\": false, \"size\": 4096, \"cached\": "
				 "1024, \"cached_fraction\": 0.2500, \"pinned\": false, \"mount\": "
				 "null, \"preload\": \"running\"}\n");
	assert_non_null(strstr(all, "{\"models\": [\n  {\"name\": \"a\""));
	/* more cached than the size (page padding) reports the size */
	assert_non_null(strstr(all,
			       "\"name\": \"b\", \"ready\": true, \"size\": 100, \"cached\": "
			       "100, \"cached_fraction\": 1.0000, \"pinned\": true, \"mount\": "
			       "\"/m/\\\"q\\\"\\\\x\\u000a\", \"mounted\": true, \"preload\": "
			       "\"off\"}\n]}\n"));
	none = format_models(NULL, 0, false);
	assert_string_equal(none, "{\"models\": []}\n");
	free(one);
	free(all);
	free(none);
}

static void metrics_carry_counters_histogram_and_types(void **state)
{
	struct space_model_report models[] = {
		{ .name = "llama-7b", .size = 8192, .cached = 4096, .pinned = true },
		{ .name = "bert", .size = 4096 },
	};
	struct space_report sp = {
		.volume_bytes = 1 << 30,
		.volume_used_bytes = 1 << 29,
		.high_watermark = 90,
		.low_watermark = 80,
		.purged_files = 3,
		.evicted_bytes = 12288,
		.n_models = 2,
		.models = models,
	};
	struct probe_source s = source();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	s.space = &sp;
	os.reads = 7;
	fs.origin_bytes = 1048576;
	fs.verify_failures = 2;
	fs.fetch_latency[2] = 3;
	fs.fetch_latency[7] = 4;
	fs.fetch_latency_count = 4;
	fs.fetch_latency_sum_ms = 1500;
	fs.verify_cpu_ns = 2500000000;
	probe_format_metrics(&s, f);
	fclose(f);
	assert_non_null(
		strstr(buf, "# TYPE blobcached_reads_total counter\nblobcached_reads_total 7\n"));
	assert_non_null(strstr(buf, "blobcached_origin_bytes_total 1048576\n"));
	assert_non_null(strstr(buf, "blobcached_errors_total{kind=\"verify\"} 2\n"));
	assert_non_null(strstr(buf, "blobcached_fetch_seconds_bucket{le=\"0.05\"} 3\n"));
	assert_non_null(strstr(buf, "blobcached_fetch_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(buf, "blobcached_fetch_seconds_sum 1.5\n"));
	assert_non_null(strstr(buf, "# TYPE blobcached_verify_cpu_seconds_total counter\n"
				    "blobcached_verify_cpu_seconds_total 2.500000\n"));
	assert_null(strstr(buf, "http_attempts")); /* file origin: no HTTP series */
	assert_null(strstr(buf, "ublk_"));	   /* on-demand mode: no ublk series */
	assert_non_null(strstr(buf, "# TYPE blobcached_cache_removed_files_total counter\n"));
	assert_non_null(strstr(buf, "blobcached_cache_removed_files_total{reason=\"purge\"} 3\n"));
	assert_non_null(
		strstr(buf, "blobcached_cache_removed_bytes_total{reason=\"evict\"} 12288\n"));
	assert_non_null(strstr(buf, "blobcached_model_cached_bytes{model=\"llama-7b\"} 4096\n"));
	assert_non_null(strstr(buf, "blobcached_model_pinned{model=\"llama-7b\"} 1\n"));
	assert_non_null(strstr(buf, "blobcached_model_pinned{model=\"bert\"} 0\n"));
	assert_non_null(strstr(buf, "blobcached_cache_high_watermark_ratio 0.9\n"));
	if (getenv("PROBE_METRICS_OUT")) { /* for the host test that parses it with Prometheus */
		FILE *o = fopen(getenv("PROBE_METRICS_OUT"), "w");
		assert_non_null(o);
		fputs(buf, o);
		fclose(o);
	}
	free(buf);
}

/* ---- the endpoint itself: a real socket, the daemon's event loop ---- */

static void metrics_in_ublk_mode_carry_the_ublk_counters(void **state)
{
	struct ublk_stats us = { .devices = 2, .reads = 9, .reads_cached = 5, .reads_failed = 1 };
	struct probe_source s = source();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	s.ublk = &us;
	probe_format_metrics(&s, f);
	fclose(f);
	assert_non_null(
		strstr(buf, "# TYPE blobcached_ublk_devices gauge\nblobcached_ublk_devices 2\n"));
	assert_non_null(strstr(buf, "blobcached_ublk_requests_total 9\n"));
	assert_non_null(strstr(buf, "blobcached_ublk_requests_cached_total 5\n"));
	assert_non_null(strstr(buf, "blobcached_ublk_request_failures_total 1\n"));
	free(buf);
}

static void gather(void *userdata, struct probe_source *out)
{
	*out = source();
}

struct abuse {
	uint16_t port;
	struct loop *loop;
	int idle;	/* idle connections opened */
	char livez[64]; /* status line of GET /livez with the idle ones open */
	long livez_ms;	/* its time */
	char big[64];	/* status line of a request with 16 KiB of headers */
	char post[64];	/* status line of POST /livez */
};

static int connect_to(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send req on a new connection, put the status line of the answer in out. */
static void request(uint16_t port, const char *req, char *out, size_t out_len)
{
	size_t len = strlen(req);
	char buf[512] = "";
	int fd = connect_to(port);
	ssize_t n;

	snprintf(out, out_len, "no answer");
	if (fd < 0)
		return;
	n = send(fd, req, len, MSG_NOSIGNAL);
	if (n != (ssize_t)len)
		snprintf(out, out_len, "sent %zd of %zu: %s", n, len, strerror(errno));
	else if ((n = recv(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		snprintf(out, out_len, "recv %zd: %s", n, strerror(errno));
	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		snprintf(out, out_len, "%s", buf);
	}
	close(fd);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *abuser(void *arg)
{
	struct abuse *a = arg;
	static int fds[1000];
	static char big[17000];
	long t0;
	int n = 0;

	for (int i = 0; i < a->idle; i++) {
		fds[n] = connect_to(a->port);
		if (fds[n] >= 0)
			n++;
	}
	a->idle = n;
	usleep(200 * 1000);
	t0 = now_ms();
	request(a->port, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", a->livez, sizeof(a->livez));
	a->livez_ms = now_ms() - t0;
	snprintf(big, sizeof(big), "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(big + strlen(big), 'a', 16384);
	strcpy(big + strlen(big), "\r\n\r\n");
	request(a->port, big, a->big, sizeof(a->big));
	request(a->port, "POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", a->post,
		sizeof(a->post));
	for (int i = 0; i < n; i++)
		close(fds[i]);
	loop_quit(a->loop, 0);
	return NULL;
}

static void wake(struct loop *loop, void *userdata)
{
}

/* Reliability F3: 1,000 idle sockets, huge headers, a POST: the endpoint still answers GET
 * within a second, with 431 and 405 for the others. */
static void endpoint_survives_idle_sockets_and_huge_headers(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct abuse a = { .idle = 1000 };
	struct rlimit rl;
	struct probe *p;
	char listen[64];
	pthread_t t;
	int fd;

	/* 1,000 connections on both ends in this process. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2200 && rl.rlim_max >= 2200) {
		rl.rlim_cur = 2200;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2200)
		a.idle = (int)(rl.rlim_cur - 100) / 2;
	/* A free port. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	a.port = ntohs(sa.sin_port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", a.port);

	if (getenv("PROBE_DEBUG"))
		log_set_level(7);
	assert_int_equal(loop_new(&a.loop), 0);
	assert_int_equal(probe_start(a.loop, listen, gather, NULL, &p), 0);
	assert_true(loop_add_periodic(a.loop, 50, wake, NULL) >= 0);
	assert_int_equal(pthread_create(&t, NULL, abuser, &a), 0);
	assert_int_equal(loop_run(a.loop), 0);
	pthread_join(t, NULL);
	probe_stop(p);
	loop_free(a.loop);
	print_message("idle connections: %d; GET /livez: '%s' in %ld ms; 16 KiB headers: '%s'; "
		      "POST: '%s'\n",
		      a.idle, a.livez, a.livez_ms, a.big, a.post);
	assert_true(a.idle >= 400);
	assert_string_equal(a.livez, "HTTP/1.1 200 OK");
	assert_true(a.livez_ms < 1000);
	assert_non_null(strstr(a.big, " 431 "));
	assert_non_null(strstr(a.post, " 405 "));
}

/* GET /models waits for a walk of the cache (space_after_scan) without holding the loop: a
 * fake walk that the loop applies 400 ms later. */
struct walk {
	struct loop *loop;
	uint16_t port;
	space_scanned_fn fn;
	void *ctx;
	int asked, cancelled;
	long asked_at, answered_at; /* ms */
	char models[64];	    /* status line of GET /models/m */
	char livez[64];		    /* of GET /livez, while /models waits */
	long livez_at;
	char body[512];
	bool stop_pending; /* leave a /models request waiting and stop the endpoint */
};

static struct walk *the_walk;

static struct space_wait *fake_wait(void *userdata, space_scanned_fn fn, void *ctx)
{
	struct walk *w = userdata;

	w->fn = fn;
	w->ctx = ctx;
	w->asked++;
	w->asked_at = now_ms();
	return (struct space_wait *)w; /* only compared, never dereferenced by the endpoint */
}

static void fake_cancel(void *userdata, struct space_wait *wait)
{
	struct walk *w = userdata;

	w->cancelled++;
	w->fn = NULL;
}

static int fake_list(void *userdata, struct probe_model **out, size_t *n)
{
	struct probe_model *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->name = "m";
	m->size = 8192;
	m->cached = 8192;
	m->preload = "off";
	*out = m;
	*n = 1;
	return 0;
}

static void gather_models(void *userdata, struct probe_source *out)
{
	*out = source();
	out->list_models = fake_list;
	out->models_wait = fake_wait;
	out->models_cancel = fake_cancel;
	out->models_userdata = the_walk;
}

/* The loop: applies the fake walk 400 ms after it was asked for. */
static void walk_tick(struct loop *loop, void *userdata)
{
	struct walk *w = userdata;

	if (w->fn && !w->stop_pending && now_ms() - w->asked_at >= 400) {
		space_scanned_fn fn = w->fn;
		w->fn = NULL;
		w->answered_at = now_ms();
		fn(NULL, w->ctx);
	}
}

static void *models_client(void *arg)
{
	struct walk *w = arg;
	const char *req = "GET /models/m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	char buf[1024] = "";
	size_t got = 0;
	int fd = connect_to(w->port);
	long t0;
	ssize_t n;

	snprintf(w->models, sizeof(w->models), "no answer");
	if (fd >= 0 && send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
		usleep(100 * 1000); /* the walk is under way */
		t0 = now_ms();
		request(w->port, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", w->livez,
			sizeof(w->livez));
		w->livez_at = now_ms() - t0;
		if (w->stop_pending) {
			loop_quit(w->loop, 0);
			close(fd);
			return NULL;
		}
		while (got < sizeof(buf) - 1 &&
		       (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
			got += (size_t)n;
		buf[got] = '\0';
		snprintf(w->body, sizeof(w->body), "%s",
			 strstr(buf, "\r\n\r\n") ? strstr(buf, "\r\n\r\n") + 4 : "");
		buf[strcspn(buf, "\r\n")] = '\0';
		snprintf(w->models, sizeof(w->models), "%s", buf);
	}
	if (fd >= 0)
		close(fd);
	loop_quit(w->loop, 0);
	return NULL;
}

static void run_models_client(struct walk *w)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct probe *p;
	char listen[64];
	pthread_t t;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	w->port = ntohs(sa.sin_port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", w->port);
	the_walk = w;
	assert_int_equal(loop_new(&w->loop), 0);
	assert_int_equal(probe_start(w->loop, listen, gather_models, NULL, &p), 0);
	assert_true(loop_add_periodic(w->loop, 20, walk_tick, w) >= 0);
	assert_int_equal(pthread_create(&t, NULL, models_client, w), 0);
	assert_int_equal(loop_run(w->loop), 0);
	pthread_join(t, NULL);
	probe_stop(p);
	loop_free(w->loop);
}

static void models_are_answered_after_a_walk_and_the_loop_answers_meanwhile(void **state)
{
	struct walk w = { 0 };

	run_models_client(&w);
	print_message("/models/m: '%s' after %ld ms; /livez meanwhile: '%s' in %ld ms\n", w.models,
		      w.answered_at - w.asked_at, w.livez, w.livez_at);
	assert_int_equal(w.asked, 1);
	assert_int_equal(w.cancelled, 0);
	assert_string_equal(w.livez, "HTTP/1.1 200 OK");
	assert_true(w.livez_at < 300); /* not behind the 400 ms walk */
	assert_string_equal(w.models, "HTTP/1.1 200 OK");
	assert_non_null(strstr(w.body, "\"name\": \"m\", \"ready\": true"));
}

static void a_stop_with_a_models_request_waiting_cancels_its_wait(void **state)
{
	struct walk w = { .stop_pending = true };

	run_models_client(&w);
	assert_int_equal(w.asked, 1);
	assert_string_equal(w.livez, "HTTP/1.1 200 OK");
	assert_int_equal(w.cancelled, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(ready_when_bound_and_nothing_wrong, reset),
		cmocka_unit_test_setup(unready_when_not_bound, reset),
		cmocka_unit_test_setup(unready_while_a_request_is_past_its_deadline, reset),
		cmocka_unit_test_setup(unready_while_the_origin_fails_and_ready_after_a_good_fetch,
				       reset),
		cmocka_unit_test_setup(all_reasons_are_listed, reset),
		cmocka_unit_test_setup(metrics_carry_counters_histogram_and_types, reset),
		cmocka_unit_test(model_ready_needs_all_bytes_and_a_working_managed_mount),
		cmocka_unit_test(models_json_lists_figures_and_escapes_paths),
		cmocka_unit_test_setup(metrics_in_ublk_mode_carry_the_ublk_counters, reset),
		cmocka_unit_test_setup(endpoint_survives_idle_sockets_and_huge_headers, reset),
		cmocka_unit_test_setup(
			models_are_answered_after_a_walk_and_the_loop_answers_meanwhile, reset),
		cmocka_unit_test_setup(a_stop_with_a_models_request_waiting_cancels_its_wait,
				       reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
