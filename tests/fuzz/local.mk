# Fuzz targets (libFuzzer, clang): a short run in every `make check`; longer: tests/fuzz/run 600
# FUZZ_TESTS= leaves them out (the Debian package build does: tests/run-all runs them).
FUZZ_TESTS = tests/fuzz/short.test
TESTS += $(FUZZ_TESTS)
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/run tests/fuzz/short.test tests/fuzz/fuzz-msg.c tests/fuzz/fuzz-config.c \
	tests/fuzz/fuzz-catalogue.c tests/fuzz/fuzz-content-range.c \
	tests/fuzz/fuzz-record.c tests/fuzz/fuzz-index.c
clean-local: clean-fuzz
clean-fuzz:
	rm -rf tests/fuzz/build
.PHONY: clean-fuzz
