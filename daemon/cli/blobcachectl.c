// SPDX-License-Identifier: GPL-2.0-or-later
/* blobcachectl: the operator CLI. One entry per command in `commands`; each command parses
 * its own options and returns an exit status. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "cli/ctlclient.h"
#include "cli/ctlspace.h"
#include "cli/gc.h"
#include "log.h"
#include "macros.h"
#include "parse.h"
#include "cli/publish.h"

#define EXIT_USAGE 2

/* --run-dir: where the daemon's control socket is. */
static const char *run_dir = CTL_DEFAULT_RUN_DIR;

static void print_line(const char *line, void *userdata)
{
	puts(line);
}

/* Send one request to the daemon, print its output; exit status 0, or 1 with the daemon's
 * error message. fn (or printing each line) handles the output. */
static _unused_ int call_daemon(int argc, char **argv, ctl_line_fn fn, void *userdata)
{
	char err[512] = "";
	int r = ctl_call(run_dir, argc, argv, fn ? fn : print_line, userdata, err, sizeof(err));

	fflush(stdout);
	if (r < 0) {
		log_error("%s: %s", argv[0], err);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static void publish_usage(FILE *f)
{
	fputs("Usage: blobcachectl publish [OPTIONS] NAME SOURCE_DIR ORIGIN_DIR\n"
	      "\n"
	      "Write an EROFS image of SOURCE_DIR and publish it as model NAME: its blobs go to\n"
	      "ORIGIN_DIR/blobs/sha256/<digest>, the model entry to ORIGIN_DIR/models/NAME.model.\n"
	      "Each file of at least --blob-min bytes is a data blob of its own, named by the\n"
	      "sha256 of its content (a file in several models is stored once, and cached once\n"
	      "on a node); smaller files are packed into one more blob. A blob the origin holds\n"
	      "already is not written again.\n"
	      "\n"
	      "With --in-place, SOURCE_DIR must lie beneath ORIGIN_DIR: its files of at least\n"
	      "--in-place-min bytes are not copied but served from where they are (each read\n"
	      "once to digest it); smaller files are packed into the metadata blob, the only\n"
	      "blob written. A file changed after publish reads as EIO until re-published.\n"
	      "\n"
	      "Options:\n"
	      "  -s, --chunk-size SIZE  EROFS chunk size, a power of two >= 4096 (default 1M)\n"
	      "  -c, --catalogue DIR    also write the model entry into DIR (the daemon's\n"
	      "                         catalogue directory)\n"
	      "  -f, --force            replace an existing model entry of different content\n"
	      "      --blob-min SIZE    smallest file made a blob of its own (default 1M; 16T\n"
	      "                         packs every file into one data blob)\n"
	      "  -i, --in-place         publish without copying the large files (see above)\n"
	      "      --in-place-min SIZE  smallest file left in place (default 1M, at most 64M)\n"
	      "  -h, --help             show this help and exit\n",
	      f);
}

static int cmd_publish(int argc, char **argv)
{
	static const struct option options[] = {
		{ "chunk-size", required_argument, NULL, 's' },
		{ "catalogue", required_argument, NULL, 'c' },
		{ "force", no_argument, NULL, 'f' },
		{ "in-place", no_argument, NULL, 'i' },
		{ "in-place-min", required_argument, NULL, 'm' },
		{ "blob-min", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct publish_options o = { .chunk_size = PUBLISH_DEFAULT_CHUNK_SIZE,
				     .in_place_min = PUBLISH_DEFAULT_IN_PLACE_MIN };
	struct publish_result res;
	bool in_place_min = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "s:c:fih", options, NULL)) != -1) {
		switch (opt) {
		case 'i':
			o.in_place = true;
			break;
		case 'm':
			if (parse_size(optarg, &o.in_place_min) < 0) {
				log_error("--in-place-min '%s' is not a size; use e.g. 1M or 65536",
					  optarg);
				return EXIT_USAGE;
			}
			in_place_min = true;
			break;
		case 'b':
			if (parse_size(optarg, &o.blob_min) < 0 || o.blob_min == 0) {
				log_error("--blob-min '%s' is not a size above 0; use e.g. 1M or "
					  "65536",
					  optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			if (parse_size(optarg, &o.chunk_size) < 0) {
				log_error("--chunk-size '%s' is not a size; use e.g. 1M or 4096",
					  optarg);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			o.catalogue_dir = optarg;
			break;
		case 'f':
			o.force = true;
			break;
		case 'h':
			publish_usage(stdout);
			return EXIT_SUCCESS;
		default:
			publish_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 3) {
		log_error("publish needs NAME SOURCE_DIR ORIGIN_DIR (got %d arguments)",
			  argc - optind);
		publish_usage(stderr);
		return EXIT_USAGE;
	}
	if (o.in_place && o.blob_min) {
		log_error("--blob-min applies to a copying publish; with --in-place use "
			  "--in-place-min");
		return EXIT_USAGE;
	}
	if (!o.in_place && in_place_min) {
		log_error("--in-place-min applies to --in-place; a copying publish takes "
			  "--blob-min");
		return EXIT_USAGE;
	}
	o.name = argv[optind];
	o.source_dir = argv[optind + 1];
	o.origin_dir = argv[optind + 2];

	if (publish_model(&o, &res) < 0)
		return EXIT_FAILURE;

	printf("published model %s%s\n", o.name,
	       res.entry_unchanged ? " (unchanged: identical content)" : "");
	printf("  meta blob   sha256:%s  %llu bytes  %zu chunk %s%s\n", res.meta.digest,
	       (unsigned long long)res.meta.size, res.meta.n_chunk_digests,
	       plural(res.meta.n_chunk_digests, "digest", "digests"),
	       res.meta.existed ? "  (already present)" : "");
	{
		const struct publish_stats *st = &res.stats;
		uint64_t model = st->large_bytes + st->small_bytes;

		printf(o.in_place ? "  in place    %zu %s, %llu bytes "
				    "(%zu distinct %s, read once, not copied)\n"
				  : "  large files %zu %s, %llu bytes, "
				    "in %zu %s named by their content\n",
		       st->large_files, plural(st->large_files, "file", "files"),
		       (unsigned long long)st->large_bytes, st->devices,
		       plural(st->devices, "blob", "blobs"));
		printf("  packed      %zu small %s, %llu bytes, in %s\n", st->small_files,
		       plural(st->small_files, "file", "files"),
		       (unsigned long long)st->small_bytes,
		       o.in_place ? "the metadata blob" : "one blob");
		if (!o.in_place) {
			printf("  data blobs  %zu written, %zu already present\n",
			       st->blobs_written, st->blobs_existed);
			for (size_t i = 1; i < res.model.n_blobs; i++)
				printf("  data blob   sha256:%s  %llu bytes%s\n",
				       res.model.blobs[i].digest,
				       (unsigned long long)res.model.blobs[i].size,
				       res.data_existed && res.data_existed[i - 1]
					       ? "  (already present)"
					       : "");
		}
		printf("  origin      %llu bytes written for a model of %llu bytes (%.3f%%)\n",
		       (unsigned long long)st->origin_bytes, (unsigned long long)model,
		       model ? 100.0 * (double)st->origin_bytes / (double)model : 0.0);
	}
	printf("  chunk size  %llu\n", (unsigned long long)o.chunk_size);
	printf("  blobs       %s/blobs/sha256/\n", o.origin_dir);
	printf("  entry       %s/models/%s.model\n", o.origin_dir, o.name);
	if (o.catalogue_dir)
		printf("  catalogue   %s/%s.model\n", o.catalogue_dir, o.name);
	printf("mount with:   blobcachectl mount %s /mnt/%s\n", o.name, o.name);
	printf("         or:  mount -t erofs -o fsid=%s,domain_id=blobcache none /mnt/%s\n"
	       "              (domain_id: the node's [cache] domain; without it nothing is "
	       "shared)\n",
	       o.name, o.name);
	publish_result_free(&res);
	return EXIT_SUCCESS;
}

static void unpublish_usage(FILE *f)
{
	fputs("Usage: blobcachectl unpublish [OPTIONS] NAME ORIGIN_DIR\n"
	      "\n"
	      "Remove model NAME's entry from ORIGIN_DIR/models (nodes then drop the model and\n"
	      "purge its cache files once it is no longer mounted). Its blobs stay on the origin\n"
	      "until 'blobcachectl gc ORIGIN_DIR' removes the ones no other model uses.\n"
	      "\n"
	      "Options:\n"
	      "  -c, --catalogue DIR    also remove the entry from DIR (a catalogue directory)\n"
	      "  -h, --help             show this help and exit\n",
	      f);
}

static int cmd_unpublish(int argc, char **argv)
{
	static const struct option options[] = {
		{ "catalogue", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *catalogue_dir = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			catalogue_dir = optarg;
			break;
		case 'h':
			unpublish_usage(stdout);
			return EXIT_SUCCESS;
		default:
			unpublish_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		log_error("unpublish needs NAME ORIGIN_DIR (got %d arguments)", argc - optind);
		unpublish_usage(stderr);
		return EXIT_USAGE;
	}
	if (unpublish_model(argv[optind], argv[optind + 1], catalogue_dir) < 0)
		return EXIT_FAILURE;
	printf("unpublished model %s; its blobs stay until 'blobcachectl gc %s'\n", argv[optind],
	       argv[optind + 1]);
	return EXIT_SUCCESS;
}

static void gc_usage(FILE *f)
{
	fputs("Usage: blobcachectl gc [OPTIONS] ORIGIN_DIR\n"
	      "\n"
	      "Remove the blobs of ORIGIN_DIR/blobs/sha256 that no ORIGIN_DIR/models/*.model\n"
	      "references and that were not modified within the grace period. Runs under the\n"
	      "origin lock (ORIGIN_DIR/.lock), which publish holds while its entry is not yet\n"
	      "written; the grace period protects blobs copied in by other means. An entry that\n"
	      "cannot be read stops gc before it removes anything.\n"
	      "\n"
	      "Options:\n"
	      "  -n, --dry-run          list what would be removed, remove nothing\n"
	      "  -g, --grace DURATION   keep blobs modified within DURATION (default 1h; 0 keeps\n"
	      "                         none: only when nothing but blobcachectl writes blobs)\n"
	      "  -h, --help             show this help and exit\n",
	      f);
}

static int cmd_gc(int argc, char **argv)
{
	static const struct option options[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "grace", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct gc_options o = { .grace_ms = GC_DEFAULT_GRACE_MS };
	struct gc_result res;
	int opt;

	while ((opt = getopt_long(argc, argv, "ng:h", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			o.dry_run = true;
			break;
		case 'g':
			if (parse_duration_ms(optarg, &o.grace_ms) < 0) {
				log_error("--grace '%s' is not a duration; use e.g. 1h, 30m or 0",
					  optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			gc_usage(stdout);
			return EXIT_SUCCESS;
		default:
			gc_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		log_error("gc needs ORIGIN_DIR (got %d arguments)", argc - optind);
		gc_usage(stderr);
		return EXIT_USAGE;
	}
	o.origin_dir = argv[optind];
	if (gc_run(&o, &res) < 0)
		return EXIT_FAILURE;
	printf("gc %s%s: %u model %s %s %u %s (%" PRIu64 " bytes); %s %u unreferenced %s (%" PRIu64
	       " bytes); kept %u unreferenced %s modified within the grace period (%" PRIu64
	       " bytes)\n",
	       o.origin_dir, o.dry_run ? " (dry run)" : "", res.entries,
	       plural(res.entries, "entry", "entries"),
	       plural(res.entries, "references", "reference"), res.referenced,
	       plural(res.referenced, "blob", "blobs"), res.referenced_bytes,
	       o.dry_run ? "would remove" : "removed", res.removed,
	       plural(res.removed, "blob", "blobs"), res.removed_bytes, res.young,
	       plural(res.young, "blob", "blobs"), res.young_bytes);
	if (res.missing)
		printf("%u referenced %s missing (see the warnings above)\n", res.missing,
		       plural(res.missing, "blob is", "blobs are"));
	return res.missing ? EXIT_FAILURE : EXIT_SUCCESS;
}

static void show_model_usage(FILE *f)
{
	fputs("Usage: blobcachectl show-model [OPTIONS] FILE|NAME\n"
	      "\n"
	      "Check and print a model entry: FILE (a path) or NAME in the catalogue directory.\n"
	      "The chunk digests are counted, not printed, unless --digests is given.\n"
	      "\n"
	      "Options:\n"
	      "  -c, --catalogue DIR    look NAME up in DIR\n"
	      "  -d, --digests          print the whole entry, chunk digests included\n"
	      "  -h, --help             show this help and exit\n",
	      f);
}

static int cmd_show_model(int argc, char **argv)
{
	static const struct option options[] = {
		{ "catalogue", required_argument, NULL, 'c' },
		{ "digests", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	_cleanup_free_ char *path = NULL, *text = NULL;
	struct catalogue_model m;
	const char *catalogue_dir = NULL, *arg;
	bool digests = false;
	char err[512];
	int opt, r;

	while ((opt = getopt_long(argc, argv, "c:dh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			catalogue_dir = optarg;
			break;
		case 'd':
			digests = true;
			break;
		case 'h':
			show_model_usage(stdout);
			return EXIT_SUCCESS;
		default:
			show_model_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		show_model_usage(stderr);
		return EXIT_USAGE;
	}
	arg = argv[optind];
	if (strchr(arg, '/') || !catalogue_dir) {
		path = strdup(arg);
	} else {
		if (!name_is_valid_model(arg, strlen(arg))) {
			log_error("'%s' is not a valid model name", arg);
			return EXIT_USAGE;
		}
		if (asprintf(&path, "%s/%s.model", catalogue_dir, arg) < 0)
			path = NULL;
	}
	if (!path) {
		log_error_errno(ENOMEM, "show-model");
		return EXIT_FAILURE;
	}
	r = catalogue_load_model_file(path, &m, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	if (digests) {
		text = catalogue_format_model(&m);
		if (text)
			printf("%s\n", text);
	} else {
		/* The entry without its (thousands of) digest lines, which are counted instead. */
		struct catalogue_model head = m;

		head.blobs = calloc(m.n_blobs ? m.n_blobs : 1, sizeof(*head.blobs));
		if (head.blobs) {
			for (size_t i = 0; i < m.n_blobs; i++) {
				head.blobs[i] = m.blobs[i];
				head.blobs[i].chunk_digests = NULL;
				head.blobs[i].n_chunk_digests = 0;
			}
			text = catalogue_format_model(&head);
			free(head.blobs);
		}
		if (text) {
			fputs(text, stdout);
			printf("\n");
			for (size_t i = 0; i < m.n_blobs; i++)
				printf("# blob %s (%s): %zu chunk %s of %llu bytes\n",
				       m.blobs[i].digest,
				       m.blobs[i].role == BLOB_ROLE_META ? "meta" : "data",
				       m.blobs[i].n_chunk_digests,
				       plural(m.blobs[i].n_chunk_digests, "digest", "digests"),
				       (unsigned long long)m.blobs[i].digest_chunk_size);
		}
	}
	if (text)
		printf("\nmount with: mount -t erofs -o fsid=%s none /mnt/%s\n", m.name, m.name);
	catalogue_model_free(&m);
	return text ? EXIT_SUCCESS : EXIT_FAILURE;
}

static void mount_usage(FILE *f)
{
	fputs("Usage: blobcachectl mount MODEL PATH [OPTIONS]\n"
	      "\n"
	      "Have the daemon mount model MODEL at PATH (an empty directory, created if missing,\n"
	      "not on the cache volume): mount -t erofs -o fsid=MODEL[,OPTIONS] none PATH, on a\n"
	      "shared bind mount of PATH. The daemon remounts it when it is lost, and mounts it\n"
	      "again after a restart (it is kept in the daemon's state_dir/mounts). OPTIONS are\n"
	      "extra EROFS options; on-demand mounts are made in the domain of the daemon's\n"
	      "[cache] domain (domain_id= added) unless OPTIONS name another domain_id=DOMAIN.\n"
	      "Waits until the model is mounted.\n",
	      f);
}

static void umount_usage(FILE *f)
{
	fputs("Usage: blobcachectl umount MODEL\n"
	      "\n"
	      "Unmount a model mounted with 'blobcachectl mount' (lazily: readers with open files\n"
	      "keep them) and forget it. Models mounted by the configuration ([model NAME]\n"
	      "mount =) are unmounted by removing them there.\n",
	      f);
}

static void mounts_usage(FILE *f)
{
	fputs("Usage: blobcachectl mounts\n"
	      "\n"
	      "List the mounts the daemon manages: kind (model or origin), name, mount point,\n"
	      "state, remount count.\n",
	      f);
}

/* A daemon command with a fixed number of arguments (after the verb). */
static int simple_command(int argc, char **argv, int min_args, int max_args,
			  void (*usage_fn)(FILE *))
{
	if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
		usage_fn(stdout);
		return EXIT_SUCCESS;
	}
	if (argc - 1 < min_args || argc - 1 > max_args) {
		usage_fn(stderr);
		return EXIT_USAGE;
	}
	return call_daemon(argc, argv, NULL, NULL);
}

static int cmd_mount(int argc, char **argv)
{
	return simple_command(argc, argv, 2, 3, mount_usage);
}

static int cmd_umount(int argc, char **argv)
{
	return simple_command(argc, argv, 1, 1, umount_usage);
}

static int cmd_mounts(int argc, char **argv)
{
	return simple_command(argc, argv, 0, 0, mounts_usage);
}

static int cmd_status(int argc, char **argv)
{
	return ctl_space_status(run_dir, argc, argv);
}

static int cmd_warm(int argc, char **argv)
{
	return ctl_space_warm(run_dir, argc, argv);
}

static int cmd_model_verb(int argc, char **argv)
{
	return ctl_space_model_verb(run_dir, argc, argv);
}

static const struct command commands[] = {
	{ "publish", "build an EROFS image of a directory and publish it as a model", cmd_publish },
	{ "unpublish", "remove a model's entry from the origin", cmd_unpublish },
	{ "gc", "remove the origin's blobs that no model references", cmd_gc },
	{ "show-model", "check and print a model's catalogue entry", cmd_show_model },
	{ "mount", "have the daemon mount a model and keep it mounted", cmd_mount },
	{ "umount", "unmount a model mounted with mount", cmd_umount },
	{ "mounts", "list the daemon's managed mounts and their state", cmd_mounts },
	{ "status", "cache usage and per-model figures of the running daemon", cmd_status },
	{ "warm", "fill a whole model into the cache now", cmd_warm },
	{ "evict", "remove an unmounted model's files from the cache", cmd_model_verb },
	{ "pin", "never cull or purge a model", cmd_model_verb },
	{ "unpin", "undo a pin", cmd_model_verb },
};

static void usage(FILE *f)
{
	fputs("Usage: blobcachectl [--run-dir DIR] [--help] [--version] COMMAND [ARGS...]\n"
	      "\n"
	      "Operator tool for blobcached. Commands that talk to the running daemon use its\n"
	      "control socket, DIR/control.sock (--run-dir: the daemon's [daemon] run_dir,\n"
	      "default " CTL_DEFAULT_RUN_DIR ").\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun 'blobcachectl COMMAND --help' for the options of a command.\n", f);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "run-dir", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	int opt;

	log_set_ident("blobcachectl");
	while ((opt = getopt_long(argc, argv, "+r:hV", options, NULL)) != -1) {
		switch (opt) {
		case 'r':
			run_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("blobcachectl %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (streq(argv[optind], commands[i].name)) {
			int sub_argc = argc - optind;
			char **sub_argv = argv + optind;
			optind = 0; /* full getopt reset for the command's own options */
			return commands[i].run(sub_argc, sub_argv);
		}
	}
	log_error("unknown command '%s'; run 'blobcachectl --help' for the list", argv[optind]);
	return EXIT_USAGE;
}
