#!/bin/sh
# A throwaway BIND 9 for examples/quickstart-dns.yaml: the zone quickstart.test on
# 127.0.0.1:PORT (5353 unless PORT is set), updatable with a TSIG key made for this run.
#
#   eval "$(examples/dns/start-bind.sh)"    # start (again, with a fresh zone and key)
#   examples/dns/start-bind.sh stop         # stop it and remove its folder
#
# Prints the `export LIFEBOAT_QUICKSTART_TSIG=...` line the quickstart reads its secret
# from on stdout, and everything else on stderr. Needs bind9 and bind9-dnsutils (Debian;
# tests/peers/install.sh installs them). Everything lives in $DIR, nothing in /etc.
set -eu

PORT="${PORT:-5353}"
ZONE=quickstart.test
KEY=lifeboat-quickstart
DIR="${LIFEBOAT_BIND_DIR:-${TMPDIR:-/tmp}/lifeboat-quickstart-bind}"
NAMED=/usr/sbin/named

say() { echo "start-bind: $*" >&2; }

stop() {
    if [ -f "$DIR/named.pid" ]; then
        pid="$(cat "$DIR/named.pid")"
        if kill "$pid" 2>/dev/null; then
            # named removes its pid file on the way out.
            i=0
            while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            say "stopped named (pid $pid)"
        fi
    fi
    rm -rf "$DIR"
}

if [ "${1:-}" = stop ]; then
    stop
    exit 0
fi

for tool in "$NAMED" /usr/sbin/tsig-keygen /usr/bin/dig; do
    [ -x "$tool" ] || { say "$tool is missing: apt-get install bind9 bind9-dnsutils"; exit 1; }
done

stop
mkdir -p "$DIR"
chmod 700 "$DIR"
/usr/sbin/tsig-keygen -a hmac-sha256 "$KEY" > "$DIR/tsig.key"
SECRET="$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$DIR/tsig.key")"

# No records for the workloads: lifeboat writes them when it first places them.
cat > "$DIR/$ZONE.zone" <<ZONEFILE
\$TTL 300
@    IN SOA ns1.$ZONE. hostmaster.$ZONE. ( 1 60 30 86400 5 )
@    IN NS  ns1.$ZONE.
ns1  IN A   127.0.0.1
ZONEFILE

cat > "$DIR/named.conf" <<CONF
options {
  directory "$DIR";
  pid-file "$DIR/named.pid";
  session-keyfile "$DIR/session.key";
  managed-keys-directory "$DIR";
  listen-on port $PORT { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  allow-query { any; };
};
controls { };
include "$DIR/tsig.key";
zone "$ZONE" {
  type primary;
  file "$ZONE.zone";
  update-policy { grant $KEY zonesub ANY; };
  notify no;
};
CONF

# named goes to the background once its config has loaded; what stops it before that
# (a bad config, a taken port) is on stderr.
if ! "$NAMED" -n 1 -c "$DIR/named.conf" 2>"$DIR/start.log"; then
    cat "$DIR/start.log" >&2
    exit 1
fi
i=0
until /usr/bin/dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" "$ZONE" SOA 2>/dev/null | grep -q .; do
    i=$((i + 1))
    if [ "$i" -ge 50 ]; then
        say "named did not answer on 127.0.0.1:$PORT (is the port taken?)"
        stop
        exit 1
    fi
    sleep 0.2
done
say "BIND serves $ZONE on 127.0.0.1:$PORT (folder $DIR)"
echo "export LIFEBOAT_QUICKSTART_TSIG='$SECRET'"
