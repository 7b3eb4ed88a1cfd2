include kmod-helpers/kcheck.mk
include kmod-helpers/modules.mk
