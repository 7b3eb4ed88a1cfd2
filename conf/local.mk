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
