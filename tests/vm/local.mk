# tests/vm build rules
