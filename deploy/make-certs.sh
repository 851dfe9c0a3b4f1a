#!/usr/bin/env bash
# Makes a private CA and the certificates of the secure 3-node profile with Debian's openssl:
# one per node (raftka1..3: server and client use, named raftkaN, localhost and 127.0.0.1, for
# the SASL_SSL listeners and node-to-node mutual TLS), one for an administrator/client, and
# PKCS#12 key stores with a generated password. Idempotent: an existing directory is kept.
#
#   deploy/make-certs.sh [DIR]        # default deploy/secrets (git-ignored)
#
# DIR then holds ca.crt, ca.key (keep it offline in real use), raftkaN.p12, client.crt/.key,
# keystore-password, admin-password (the PLAIN admin of the listeners), alice-password (the
# SCRAM user `make cluster-secure` creates), raftkaN.properties (each node's secret settings)
# client.properties (librdkafka's settings) and client-java.properties (Java's).
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")" && pwd)/secrets}
if [ -f "$dir/ca.crt" ]; then
  echo "make-certs: $dir already holds a CA; remove it to start over" >&2
  exit 0
fi
mkdir -p "$dir"
cd "$dir"
ec() { echo -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes; }
openssl rand -hex 16 > keystore-password
openssl rand -hex 16 > admin-password
openssl rand -hex 16 > alice-password
openssl req -x509 $(ec) -keyout ca.key -out ca.crt -days 825 -subj "/CN=raftka-ca" 2>/dev/null
for n in raftka1 raftka2 raftka3; do
  openssl req $(ec) -keyout "$n.key" -out "$n.csr" -subj "/CN=$n" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$n" > "$n.ext"
  openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$n.crt" \
    -days 825 -extfile "$n.ext" 2>/dev/null
  openssl pkcs12 -export -in "$n.crt" -inkey "$n.key" -certfile ca.crt -name "$n" \
    -passout "file:keystore-password" -out "$n.p12"
  rm -f "$n.csr" "$n.ext"
  # The node's secret settings (RAFTKA_CONFIG in the compose file), kept out of the compose file.
  cat > "$n.properties" <<PROPS
ssl.keystore.location=/etc/raftka/secrets/$n.p12
ssl.keystore.password=$(cat keystore-password)
raft.ssl.keystore.location=/etc/raftka/secrets/$n.p12
raft.ssl.keystore.password=$(cat keystore-password)
raft.ssl.truststore.location=/etc/raftka/secrets/ca.crt
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="$(cat admin-password)";
PROPS
done
openssl req $(ec) -keyout client.key -out client.csr -subj "/CN=client" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt \
  -days 825 -extfile client.ext 2>/dev/null
rm -f client.csr client.ext
cat > client.properties <<PROPS
# librdkafka: kcat -F client.properties, confluent-kafka (the same keys in its config dict).
security.protocol=SASL_SSL
sasl.mechanisms=SCRAM-SHA-512
sasl.username=alice
sasl.password=$(cat alice-password)
ssl.ca.location=$dir/ca.crt
PROPS
cat > client-java.properties <<PROPS
# Java clients and Kafka's tools (--command-config / --producer.config / --consumer.config).
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="$(cat alice-password)";
ssl.truststore.type=PEM
ssl.truststore.location=$dir/ca.crt
PROPS
# The containers run as uid 10001 (deploy/Dockerfile) and read the stores through a read-only
# mount: as root, hand the files to that uid (owner-only modes); otherwise they must be
# world-readable, which the message below says.
if [ "$(id -u)" = 0 ]; then
  chown -R 10001:10001 "$dir"
  chmod 700 "$dir"
  chmod 600 "$dir"/*
else
  chmod 755 "$dir"
  chmod 644 ./*.p12 ./*.crt ./raftka*.properties
  echo "make-certs: not root, so the node files in $dir are world-readable (the containers run as uid 10001)" >&2
fi
echo "make-certs: CA and certificates in $dir"
