# PostgreSQL (the datasets' real peer): the server binaries (initdb, pg_ctl, postgres,
# pg_basebackup) and psql. The tests start their own clusters on loopback ports, as the
# `postgres` user the package creates (PostgreSQL refuses to run as root); the package's
# own cluster is not used.
apt_install postgresql
