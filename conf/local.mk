# The example configuration is installed as blobcached.conf unless one exists already:
# an upgrade must never overwrite the operator's settings.
blobcachedconfdir = $(sysconfdir)/blobcached
EXTRA_DIST += conf/blobcached.conf

install-data-local: install-conf
install-conf:
	$(MKDIR_P) $(DESTDIR)$(blobcachedconfdir) $(DESTDIR)$(localstatedir)/lib/blobcached/catalogue
	test -e $(DESTDIR)$(blobcachedconfdir)/blobcached.conf || \
		$(INSTALL_DATA) $(srcdir)/conf/blobcached.conf $(DESTDIR)$(blobcachedconfdir)/blobcached.conf
# Uninstall removes the configuration only if it is still the shipped one: an operator's edited
# file stays.
uninstall-local: uninstall-conf
uninstall-conf:
	if cmp -s $(srcdir)/conf/blobcached.conf $(DESTDIR)$(blobcachedconfdir)/blobcached.conf; then \
		rm -f $(DESTDIR)$(blobcachedconfdir)/blobcached.conf; fi
.PHONY: install-conf uninstall-conf

# systemd: the service and its cache volume mount; udev: the rule that starts the service when
# the volume appears. Directories from systemd's and udev's pkg-config (configure options
# --with-systemdsystemunitdir, --with-udevrulesdir).
systemdsystemunit_DATA = conf/blobcached.service conf/var-cache-blobcached.mount
dist_udevrules_DATA = udev/61-blobcached.rules
EXTRA_DIST += conf/blobcached.service.in conf/var-cache-blobcached.mount
CLEANFILES += conf/blobcached.service
conf/blobcached.service: conf/blobcached.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && sed -e 's|@sbindir[@]|$(sbindir)|g' $(srcdir)/conf/blobcached.service.in >$@.tmp && mv $@.tmp $@
AM_DISTCHECK_CONFIGURE_FLAGS = \
	--with-systemdsystemunitdir='$${dc_install_base}/lib/systemd/system' \
	--with-udevrulesdir='$${dc_install_base}/lib/udev/rules.d' \
	--with-mount-helper-dir='$${dc_install_base}/sbin'

# The Kubernetes example (README.md, "Kubernetes"); checked by tests/func/kubernetes-manifests.test.
EXTRA_DIST += conf/kubernetes/blobcached-config.yaml conf/kubernetes/blobcached-daemonset.yaml \
	conf/kubernetes/consumer-pod.yaml conf/kubernetes/Containerfile
