# unit tests of the catalogue and publish
