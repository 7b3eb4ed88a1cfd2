# tests/vm: the VM tier. Each scenario is a busybox sh script that tests/vm/run-scenario runs as
# root in a fresh VM (Debian's 6.12 cloud kernel under qemu TCG); see tests/vm/README.md.
# In TESTS, the .sh extension means "VM scenario" (host functional tests use .test).
# Add a scenario by appending it to VM_SCENARIOS.
VM_SCENARIOS = \
	tests/vm/scenarios/kernel-ondemand.sh \
	tests/vm/scenarios/kernel-stock.sh \
	tests/vm/scenarios/publish-mount-sha256.sh \
	tests/vm/scenarios/publish-in-place.sh \
	tests/vm/scenarios/second-read-cached.sh \
	tests/vm/scenarios/multi-blob-device.sh \
	tests/vm/scenarios/unknown-fsid.sh \
	tests/vm/scenarios/origin-errors-eio.sh \
	tests/vm/scenarios/http-origin.sh \
	tests/vm/scenarios/http-concurrent.sh \
	tests/vm/scenarios/http-faults.sh \
	tests/vm/scenarios/no-ondemand-kernel.sh \
	tests/vm/scenarios/corrupt-chunk.sh \
	tests/vm/scenarios/concurrent-readers.sh \
	tests/vm/scenarios/shared-files.sh \
	tests/vm/scenarios/restart-kill9.sh \
	tests/vm/scenarios/ublk-restart-kill9.sh \
	tests/vm/scenarios/probe.sh \
	tests/vm/scenarios/managed-mount.sh \
	tests/vm/scenarios/holder-lost.sh \
	tests/vm/scenarios/kill-during-umount.sh \
	tests/vm/scenarios/mount-propagation.sh \
	tests/vm/scenarios/container-restart.sh \
	tests/vm/scenarios/warm-status.sh \
	tests/vm/scenarios/cull-watermark.sh \
	tests/vm/scenarios/purge-unused.sh \
	tests/vm/scenarios/model-update.sh \
	tests/vm/scenarios/inplace-update.sh \
	tests/vm/scenarios/cull-race.sh \
	tests/vm/scenarios/cache-full.sh \
	tests/vm/scenarios/cache-volume-fail.sh \
	tests/vm/scenarios/ublk-volume-stall.sh \
	tests/vm/scenarios/demo.sh \
	tests/vm/scenarios/demo-ublk.sh \
	tests/vm/scenarios/debian-guest.sh \
	tests/vm/scenarios/systemd-restart.sh \
	tests/vm/scenarios/systemd-nfs.sh \
	tests/vm/scenarios/nfs-origin.sh \
	tests/vm/scenarios/nfs-partition.sh \
	tests/vm/scenarios/model-preload.sh \
	tests/vm/scenarios/model-retire.sh \
	tests/vm/scenarios/origin-catalogue.sh \
	tests/vm/scenarios/dkms-modules.sh \
	tests/vm/scenarios/mount-helper.sh \
	tests/vm/scenarios/deb-install.sh \
	tests/vm/scenarios/deb-upgrade.sh \
	tests/vm/scenarios/ublk-publish-mount.sh \
	tests/vm/scenarios/ublk-publish-in-place.sh \
	tests/vm/scenarios/ublk-second-read.sh \
	tests/vm/scenarios/ublk-corrupt-chunk.sh \
	tests/vm/scenarios/ublk-kill9.sh \
	tests/vm/scenarios/ublk-restart-grace.sh \
	tests/vm/scenarios/ublk-systemd.sh \
	tests/vm/scenarios/ublk-model-update.sh \
	tests/vm/scenarios/ublk-inplace-update.sh \
	tests/vm/scenarios/ublk-http-concurrent.sh \
	tests/vm/scenarios/ublk-space.sh \
	tests/vm/scenarios/ublk-shared-files.sh

TESTS += $(VM_SCENARIOS)
TEST_EXTENSIONS += .sh
# Each run calls tests/vm/prepare first: cached, and serialised by an flock under make -j.
# The console is streamed, so the automake log of a failed scenario shows all of it.
SH_LOG_COMPILER = env SRCDIR='$(abs_top_srcdir)' BUILDDIR='$(abs_top_builddir)' \
	$(top_srcdir)/tests/vm/run-scenario

EXTRA_DIST += $(VM_SCENARIOS) \
	tests/vm/README.md \
	tests/vm/run-scenario \
	tests/vm/prepare \
	tests/vm/init \
	tests/vm/prepare-debian \
	tests/vm/systemd-runner \
	tests/vm/dkms-modules \
	tests/vm/lib.sh \
	tests/vm/blobcache.sh

# Fetch the kernel and build the modules once (also done on demand by each scenario).
vm-prepare:
	SRCDIR='$(abs_top_srcdir)' BUILDDIR='$(abs_top_builddir)' $(top_srcdir)/tests/vm/prepare

# Only the VM scenarios (the programs they put in the guest are built first).
check-vm:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(VM_SCENARIOS)'

clean-local: clean-vm
clean-vm:
	rm -rf tests/vm/cache/runs tests/vm/logs

# The cache (kernel packages, modules) survives 'make clean'; 'make distclean' drops it.
distclean-local: distclean-vm
distclean-vm:
	rm -rf tests/vm/cache

.PHONY: vm-prepare check-vm clean-vm distclean-vm

# Needs the Debian guest (run-scenario --rootfs debian, branch systemd): joins VM_SCENARIOS once
# that is merged.
