# cluster: the lookalike cluster on Debian's servers, started by deploy/cluster (etcd, Patroni
# and PostgreSQL 15, query nodes under deploy/supervise, Nginx, Prometheus and exporters).
# tests/integration/cluster_*.sh bring it up on free loopback ports and inject faults.
# python3-etcd: Patroni's etcd3 module imports it (its v3 client is its own, over the JSON gateway).
DEB_PKGS += etcd-server etcd-client patroni python3-etcd postgresql-15 postgresql-client-15 nginx \
	prometheus prometheus-postgres-exporter prometheus-nginx-exporter iproute2 util-linux curl

# `make cluster`: build, then start the cluster (CLUSTER_DIR, LB_PORT, NODES... pass through).
.PHONY: cluster
cluster: deps
	@$(MAKE) --no-print-directory -j$(JOBS) programs
	@BUILD=$(BUILD) deploy/cluster up

# Node membership in etcd (src/cluster): an etcd v3 client over the JSON gateway and a
# lease-kept registration thread. Its HTTP response parser sees etcd's bytes: fuzzed.
MODULES += cluster
cluster_DEPS := core
cluster_PKGS := jansson
FUZZERS += etcd_response
fuzz_etcd_response_MODULES := cluster core
# tests/integration/etcd_member.c: registration, expiry and re-registration against a real etcd.
IT_MODULES_etcd_member := cluster core
