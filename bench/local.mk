# The host benchmark of the fill core (bench/fill-host runs it): built with the tree, never
# installed, never run by make check. It links the daemon's own fill core (libfillcore.a).
noinst_PROGRAMS += bench/fill-core
bench_fill_core_SOURCES = bench/fill-core.c
bench_fill_core_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS) $(CRYPTO_CFLAGS) $(CURL_CFLAGS)
bench_fill_core_LDADD = $(FILLCORE_LIBS)
