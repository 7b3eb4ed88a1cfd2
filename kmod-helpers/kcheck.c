// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * blobcache-kcheck: can this kernel run blobcached? Gathers facts (kernel release, kernel config,
 * modules through libkmod, /dev/cachefiles) and prints what kcheck-rules.c makes of them.
 *
 * Every path goes through --root so that tests and reviewers can run it against a fixture tree.
 * Nothing is ever written to /dev/cachefiles unless --probe is given.
 */
#include "kcheck-rules.h"
#include "log.h"
#include "macros.h"

#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <libkmod.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define PROGRAM "blobcache-kcheck"
/* A kernel .config is about 300 KiB; anything much larger is not one. */
#define CONFIG_MAX_SIZE (16u << 20)

extern char **environ;

struct options {
	const char *root; /* NULL: the real system */
	const char *kernel;
	const char *probe_dir;
	bool json;
};

static void kmod_unrefp(struct kmod_ctx **ctx)
{
	if (*ctx)
		kmod_unref(*ctx);
}

static void kmod_module_unrefp(struct kmod_module **mod)
{
	if (*mod)
		kmod_module_unref(*mod);
}

/* ROOT + PATH into buf. Returns 0 or -ENAMETOOLONG. */
static int root_path(const struct options *opts, const char *path, char *buf, size_t size)
{
	const char *root = opts->root ? opts->root : "";
	size_t root_len = strlen(root);
	int n;

	while (root_len > 0 && root[root_len - 1] == '/')
		root_len--;
	n = snprintf(buf, size, "%.*s%s", (int)root_len, root, path);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* Read all of fd into a NUL-terminated buffer the caller frees. Returns 0 or -errno. */
static int read_all(int fd, char **out)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *bigger;

			if (cap >= CONFIG_MAX_SIZE)
				return -EFBIG;
			cap = cap ? cap * 2 : 65536;
			bigger = realloc(buf, cap + 1);
			if (!bigger)
				return -ENOMEM;
			buf = bigger;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = TAKE_PTR(buf);
	return 0;
}

static int read_file(const char *path, char **out)
{
	_cleanup_close_ int fd = -EBADF;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return read_all(fd, out);
}

/* `gzip -dc PATH`: avoids a zlib dependency for the one compressed file kcheck reads. */
static int read_gzip_file(const char *path, char **out)
{
	char *argv[] = { "gzip", "-dc", "--", (char *)path, NULL };
	_cleanup_close_ int read_end = -EBADF;
	posix_spawn_file_actions_t actions;
	int pipefd[2], status, r, wr;
	pid_t pid;

	if (access(path, R_OK) < 0)
		return -errno;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	read_end = pipefd[0];

	r = posix_spawn_file_actions_init(&actions);
	if (r != 0) {
		close(pipefd[1]);
		return -r;
	}
	r = posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
	if (r == 0)
		r = posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY,
						     0);
	if (r == 0)
		r = posix_spawnp(&pid, "gzip", &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	close(pipefd[1]);
	if (r != 0)
		return log_debug_errno(r, "cannot run gzip");

	r = read_all(read_end, out);
	/* Close before waiting: a reader that gave up must not leave gzip blocked on the pipe. */
	close(TAKE_FD(read_end));
	while ((wr = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		free(*out);
		*out = NULL;
		return r;
	}
	if (wr < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(*out);
		*out = NULL;
		return log_debug_errno(EIO, "gzip -dc %s failed", path);
	}
	return 0;
}

static void trim_newline(char *s)
{
	s[strcspn(s, "\n")] = '\0';
}

/* The release of the running kernel: the fixture's proc/sys/kernel/osrelease under --root. */
static int running_release(const struct options *opts, char *buf, size_t size)
{
	struct utsname uts;

	if (opts->root) {
		_cleanup_free_ char *text = NULL;
		char path[PATH_MAX];

		if (root_path(opts, "/proc/sys/kernel/osrelease", path, sizeof(path)) == 0 &&
		    read_file(path, &text) == 0) {
			trim_newline(text);
			snprintf(buf, size, "%s", text);
			return 0;
		}
		return -ENOENT;
	}
	if (uname(&uts) < 0)
		return -errno;
	snprintf(buf, size, "%s", uts.release);
	return 0;
}

static void gather_kernel(const struct options *opts, struct kc_facts *facts)
{
	char running[sizeof(facts->release)] = "";
	int r;

	r = running_release(opts, running, sizeof(running));
	if (opts->kernel)
		snprintf(facts->release, sizeof(facts->release), "%s", opts->kernel);
	else if (r == 0)
		snprintf(facts->release, sizeof(facts->release), "%s", running);
	else {
		/* A fixture without osrelease: take this machine's release, and call it running. */
		struct utsname uts;

		if (uname(&uts) == 0)
			snprintf(facts->release, sizeof(facts->release), "%s", uts.release);
	}
	/* A fixture that does not say which kernel runs stands for the one being checked. */
	facts->is_running = r < 0 ? opts->root != NULL : streq(running, facts->release);
	facts->version_valid = kc_parse_version(facts->release, &facts->version) == 0;
}

static void gather_config(const struct options *opts, struct kc_facts *facts)
{
	_cleanup_free_ char *text = NULL;
	char path[PATH_MAX], rel[PATH_MAX];
	int r;

	facts->config_error = -ENOENT;
	snprintf(rel, sizeof(rel), "/boot/config-%s", facts->release);
	if (root_path(opts, rel, path, sizeof(path)) == 0) {
		r = read_file(path, &text);
		if (r == 0)
			goto found;
		if (r != -ENOENT)
			facts->config_error = log_debug_errno(r, "cannot read %s", path);
	}
	/* /proc/config.gz describes the running kernel only. */
	if (!facts->is_running)
		return;
	if (root_path(opts, "/proc/config.gz", path, sizeof(path)) < 0)
		return;
	r = read_gzip_file(path, &text);
	if (r == 0)
		goto found;
	if (r != -ENOENT)
		facts->config_error = log_debug_errno(r, "cannot decompress %s", path);
	return;

found:
	snprintf(facts->config_source, sizeof(facts->config_source), "%s", path);
	facts->config_error = 0;
	kc_config_parse(text, &facts->config);
}

static const char *module_file_suffixes[] = { ".ko", ".ko.xz", ".ko.zst", ".ko.gz" };
/* nftw() has no user pointer: the file name being looked for, and where it was found. */
static const char *updates_wanted;
static char *updates_found;
static size_t updates_found_size;

static int updates_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *base = path + ftw->base;
	size_t name_len = strlen(updates_wanted);

	if (type != FTW_F || strncmp(base, updates_wanted, name_len) != 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(module_file_suffixes); i++) {
		if (streq(base + name_len, module_file_suffixes[i])) {
			snprintf(updates_found, updates_found_size, "%s", path);
			return 1;
		}
	}
	return 0;
}

/* Look for NAME.ko* under MODULE_DIR/updates, where out-of-tree rebuilds go. */
static void find_updates_module(const struct kc_facts *facts, const char *name, char *out,
				size_t size)
{
	char dir[PATH_MAX];

	out[0] = '\0';
	if ((size_t)snprintf(dir, sizeof(dir), "%s/updates", facts->module_dir) >= sizeof(dir))
		return;
	updates_wanted = name;
	updates_found = out;
	updates_found_size = size;
	nftw(dir, updates_visit, 16, FTW_PHYS);
}

/* Whether NAME is listed in the fixture's proc/modules (used under --root). */
static bool fixture_module_loaded(const struct options *opts, const char *name)
{
	_cleanup_free_ char *text = NULL;
	size_t len = strlen(name);
	char path[PATH_MAX];

	if (root_path(opts, "/proc/modules", path, sizeof(path)) < 0 || read_file(path, &text) < 0)
		return false;
	for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line)
		if (strncmp(line, name, len) == 0 && line[len] == ' ')
			return true;
	return false;
}

/* The first of names (NULL-terminated) that the module directory knows, into m. */
static void gather_module_named(const struct options *opts, struct kmod_ctx *ctx,
				struct kc_facts *facts, const char *const *names,
				struct kc_module_facts *m)
{
	m->presence = KC_MODULE_MISSING;
	for (size_t i = 0; names[i]; i++) {
		const char *name = names[i];
		_cleanup_(kmod_module_unrefp) struct kmod_module *mod = NULL;
		const char *path;
		int state;

		if (!m->updates_path[0])
			find_updates_module(facts, name, m->updates_path, sizeof(m->updates_path));
		if (kmod_module_new_from_name_lookup(ctx, name, &mod) < 0 || !mod)
			continue;

		path = kmod_module_get_path(mod);
		if (path) {
			m->presence = KC_MODULE_FILE;
			snprintf(m->path, sizeof(m->path), "%s", path);
		} else {
			m->presence = KC_MODULE_BUILTIN;
		}
		if (!facts->is_running)
			return;
		if (opts->root) {
			m->loaded = fixture_module_loaded(opts, name);
			return;
		}
		state = kmod_module_get_initstate(mod);
		if (state == KMOD_MODULE_BUILTIN)
			m->presence = KC_MODULE_BUILTIN;
		m->loaded = state == KMOD_MODULE_LIVE || state == KMOD_MODULE_COMING;
		return;
	}
}

static void gather_module(const struct options *opts, struct kmod_ctx *ctx, struct kc_facts *facts,
			  enum kc_module_id id)
{
	/* fscache.ko was merged into netfs.ko in 6.8. */
	static const char *const alternatives[_KC_MOD_COUNT][3] = {
		[KC_MOD_CACHEFILES] = { "cachefiles" },
		[KC_MOD_EROFS] = { "erofs" },
		[KC_MOD_NETFS] = { "netfs", "fscache" },
	};

	gather_module_named(opts, ctx, facts, alternatives[id], &facts->modules[id]);
}

static void gather_modules(const struct options *opts, struct kc_facts *facts)
{
	/* Under --root, do not let the host's /etc/modprobe.d leak into a fixture's answers. */
	static const char *const no_config[] = { NULL };
	_cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
	char rel[PATH_MAX];
	struct stat st;

	snprintf(rel, sizeof(rel), "/lib/modules/%s", facts->release);
	if (root_path(opts, rel, facts->module_dir, sizeof(facts->module_dir)) < 0)
		return;
	facts->module_dir_present = stat(facts->module_dir, &st) == 0 && S_ISDIR(st.st_mode);
	if (!facts->module_dir_present)
		return;

	ctx = kmod_new(facts->module_dir, opts->root ? no_config : NULL);
	if (!ctx) {
		log_warn("libkmod cannot open %s", facts->module_dir);
		return;
	}
	for (int id = 0; id < _KC_MOD_COUNT; id++)
		gather_module(opts, ctx, facts, (enum kc_module_id)id);
	{
		static const char *const ublk[] = { "ublk_drv", NULL };
		gather_module_named(opts, ctx, facts, ublk, &facts->ublk_module);
	}
}

/* One command per write(), as the device wants. Returns 0 or -errno. */
static int device_command(int fd, const char *command)
{
	size_t len = strlen(command);
	ssize_t n = write(fd, command, len);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/*
 * --probe: bind an on-demand cache in DIR for a moment. Closing the fd unbinds it again; the
 * kernel leaves DIR/cache and DIR/graveyard behind.
 */
static void probe_device(int fd, const char *dir, struct kc_facts *facts)
{
	char command[PATH_MAX + 8];
	char *resolved = realpath(dir, NULL);

	snprintf(facts->probe_dir, sizeof(facts->probe_dir), "%s", resolved ? resolved : dir);
	free(resolved);

	facts->probe_stage = KC_PROBE_DIR;
	snprintf(command, sizeof(command), "dir %s", facts->probe_dir);
	facts->probe_error = device_command(fd, command);
	if (facts->probe_error < 0)
		return;
	facts->probe_stage = KC_PROBE_TAG;
	facts->probe_error = device_command(fd, "tag kcheck");
	if (facts->probe_error < 0)
		return;
	facts->probe_stage = KC_PROBE_BIND;
	facts->probe_error = device_command(fd, "bind ondemand");
}

static void gather_device(const struct options *opts, struct kc_facts *facts)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat st;

	if (root_path(opts, "/dev/cachefiles", facts->device_path, sizeof(facts->device_path)) < 0)
		return;
	if (!facts->is_running)
		return;
	facts->device_present = lstat(facts->device_path, &st) == 0;
	if (!facts->device_present)
		return;
	fd = open(facts->device_path, O_RDWR | O_CLOEXEC);
	facts->device_open_error = fd < 0 ? -errno : 0;
	if (fd < 0 || !opts->probe_dir)
		return;
	/* A fixture's regular file would accept any write and prove nothing. */
	if (!S_ISCHR(st.st_mode)) {
		log_warn("--probe skipped: %s is not a character device", facts->device_path);
		return;
	}
	probe_device(fd, opts->probe_dir, facts);
}

static void gather(const struct options *opts, struct kc_facts *facts)
{
	gather_kernel(opts, facts);
	gather_config(opts, facts);
	gather_modules(opts, facts);
	gather_device(opts, facts);
	/* The ublk front end's control device: only the running kernel's means anything. */
	if (facts->is_running && root_path(opts, "/dev/ublk-control", facts->ublk_control_path,
					   sizeof(facts->ublk_control_path)) == 0) {
		struct stat st;
		facts->ublk_control_present =
			stat(facts->ublk_control_path, &st) == 0 && S_ISCHR(st.st_mode);
	}
}

/* Print LABEL, then TEXT wrapped at 100 columns with continuation lines indented to the label. */
static void print_wrapped(const char *label, const char *text)
{
	const int width = 100;
	int indent = (int)strlen(label);
	int column = printf("%s", label);
	bool line_start = true;

	while (*text) {
		size_t word = strcspn(text, " ");

		if (!line_start && column + 1 + (int)word > width) {
			printf("\n%*s", indent, "");
			column = indent;
			line_start = true;
		}
		if (!line_start) {
			putchar(' ');
			column++;
		}
		column += printf("%.*s", (int)word, text);
		line_start = false;
		text += word;
		text += strspn(text, " ");
	}
	putchar('\n');
}

static void print_text(const struct kc_facts *facts, const struct kc_report *report)
{
	const char *section = NULL, *last_fix = NULL;
	char result[320];
	const struct kc_finding *ublk = kc_report_find(report, "frontend.ublk");
	size_t problems = kc_report_count(report, KC_PROBLEM);
	size_t warnings = kc_report_count(report, KC_WARNING);

	printf("%s %s: kernel %s%s\n", PROGRAM, PACKAGE_VERSION, facts->release,
	       facts->is_running ? " (running)" : "");
	for (size_t i = 0; i < report->count; i++) {
		const struct kc_finding *f = &report->findings[i];
		char label[32];

		if (!section || !streq(section, f->section)) {
			section = f->section;
			printf("\n%s\n", section);
		}
		snprintf(label, sizeof(label), "  %-9s",
			 f->verdict == KC_PROBLEM ? "PROBLEM" : kc_verdict_name(f->verdict));
		print_wrapped(label, f->summary);
		if (f->fix[0])
			print_wrapped("           fix: ",
				      last_fix && streq(last_fix, f->fix) ? "as above" : f->fix);
		if (f->fix[0])
			last_fix = f->fix;
	}
	putchar('\n');
	if (problems == 0 && warnings == 0)
		snprintf(result, sizeof(result), "ok: this kernel can run blobcached.");
	else if (problems == 0)
		snprintf(result, sizeof(result),
			 "no problems found, %zu warning%s: read %s before relying on this kernel.",
			 warnings, warnings == 1 ? "" : "s", warnings == 1 ? "it" : "them");
	else if (ublk && ublk->verdict != KC_WARNING)
		snprintf(result, sizeof(result),
			 "%zu problem%s, %zu warning%s: the on-demand front end cannot serve on "
			 "this "
			 "kernel until the problems are fixed; the ublk front end can (%s).",
			 problems, problems == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s",
			 ublk->verdict == KC_OK
				 ? "[daemon] frontend = auto or ublk"
				 : "modprobe ublk_drv, then frontend = auto or ublk");
	else
		snprintf(result, sizeof(result),
			 "%zu problem%s, %zu warning%s: blobcached cannot serve images on this "
			 "kernel "
			 "until the problems are fixed.",
			 problems, problems == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
	print_wrapped("Result: ", result);
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json_field(const char *key, const char *value, bool last)
{
	printf("\"%s\":", key);
	if (value)
		print_json_string(value);
	else
		fputs("null", stdout);
	fputs(last ? "" : ",", stdout);
}

static void print_json(const struct kc_facts *facts, const struct kc_report *report)
{
	putchar('{');
	print_json_field("program", PROGRAM, false);
	print_json_field("version", PACKAGE_VERSION, false);
	print_json_field("kernel", facts->release, false);
	printf("\"running\":%s,", facts->is_running ? "true" : "false");
	print_json_field("config", facts->config_source[0] ? facts->config_source : NULL, false);
	print_json_field("verdict", kc_verdict_name(kc_report_worst(report)), false);
	printf("\"problems\":%zu,\"warnings\":%zu,\"checks\":[",
	       kc_report_count(report, KC_PROBLEM), kc_report_count(report, KC_WARNING));
	for (size_t i = 0; i < report->count; i++) {
		const struct kc_finding *f = &report->findings[i];

		printf("%s{", i ? "," : "");
		print_json_field("id", f->id, false);
		print_json_field("section", f->section, false);
		print_json_field("verdict", kc_verdict_name(f->verdict), false);
		print_json_field("summary", f->summary, false);
		print_json_field("fix", f->fix[0] ? f->fix : NULL, true);
		putchar('}');
	}
	puts("]}");
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"Check whether this kernel can run blobcached (cachefiles on-demand mode + "
		"EROFS).\n"
		"\n"
		"  -k, --kernel VER   check kernel release VER instead of the running one\n"
		"  -r, --root DIR     look for /boot, /lib/modules, /proc and /dev under DIR\n"
		"  -p, --probe DIR    bind an on-demand cache in DIR for a moment to prove "
		"support\n"
		"                     (writes to /dev/cachefiles; DIR must be on ext4 or XFS)\n"
		"  -j, --json         print the report as JSON\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n"
		"\n"
		"Exit status: 0 no problems (warnings allowed), 1 problems found, 2 usage error.\n",
		PROGRAM);
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "root", required_argument, NULL, 'r' },
		{ "probe", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct options opts = { 0 };
	struct kc_report report;
	struct kc_facts facts = { 0 };
	int c;

	log_set_ident(PROGRAM);
	while ((c = getopt_long(argc, argv, "k:r:p:jhV", long_options, NULL)) != -1) {
		switch (c) {
		case 'k':
			opts.kernel = optarg;
			break;
		case 'r':
			opts.root = optarg;
			break;
		case 'p':
			opts.probe_dir = optarg;
			break;
		case 'j':
			opts.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("%s %s\n", PROGRAM, PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (opts.kernel && !opts.kernel[0]) {
		log_error("--kernel needs a release such as 6.12.0-1-amd64");
		return 2;
	}

	gather(&opts, &facts);
	kc_evaluate(&facts, &report);
	if (opts.json)
		print_json(&facts, &report);
	else
		print_text(&facts, &report);
	return kc_report_count(&report, KC_PROBLEM) ? 1 : 0;
}
