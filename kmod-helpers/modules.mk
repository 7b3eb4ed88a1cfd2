# module builder
