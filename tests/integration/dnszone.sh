# dnszone.sh - sourced by tests (after rig.sh) and benchmarks that need DNS:
# DNSSEC-signed zones served by a real nsd on loopback.  Uses $T (a scratch
# directory) and, for dns_publish_zone, $KEYCTL.
#
#   dns_owner LOCAL                  the RFC 7929/8162 owner label of a local part
#   dns_store DIR DOMAIN             a key store of a remote domain's own in DIR (DIR/conf)
#   dns_publish_zone NAME CONF [MIN] $Z/NAME.zone: SOA (negative TTL MIN, default 120), NS,
#                                    and the records cables-keyctl publish --dns prints
#                                    for NAME from CONF's key store
#   dns_sign_zone NAME EXPIRY INCEPTION
#                                    sign $Z/NAME.zone (ECDSA P-256 ZSK and KSK) into
#                                    NAME.zone.signed; its DS goes to $T/anchors; signing
#                                    NAME again reuses its keys (the anchors stay good)
#   dns_start_nsd PORT NAME...       serve those zones on 127.0.0.1@PORT ($NSD_PID)
#   dns_stop_nsd
#
# dnstree.sh builds a whole tree (a signed root and "test.") on top of these.

Z=$T/zones
mkdir -p "$Z"
NSD_PID=

dns_owner() { /usr/bin/python3 -c "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:56])" "$1"; }

dns_store() {
	mkdir -p "$1"
	printf 'KeyStore %s/keys.db\nKeyStoreKey %s/store.key\nTempDir %s\nLocalDomains %s\nKeydSocket none\n' \
		"$1" "$1" "$1" "$2" > "$1/conf"
}

dns_publish_zone() {
	{
		printf '$ORIGIN %s.\n$TTL 300\n@ IN SOA ns.%s. admin.%s. 1 3600 600 86400 %s\n' "$1" "$1" "$1" "${3:-120}"
		printf '@ IN NS ns.%s.\nns IN A 127.0.0.1\n' "$1"
		"$KEYCTL" -c "$2" publish --dns --domain "$1"
	} > "$Z/$1.zone"
}

dns_sign_zone() {
	( cd "$Z" || exit 1
	  if [ -s "$1.keys" ]; then
		read -r zsk ksk < "$1.keys"
	  else
		zsk=$(ldns-keygen -a ECDSAP256SHA256 "$1") && ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$1") &&
		echo "$zsk $ksk" > "$1.keys" && cat "$ksk.ds" >> "$T/anchors" || exit 1
	  fi
	  ldns-signzone -e "$2" -i "$3" "$1.zone" "$zsk" "$ksk" )
}

dns_start_nsd() {
	port=$1
	shift
	cat > "$T/nsd.conf" <<-CONF
	server:
		ip-address: 127.0.0.1@$port
		port: $port
		do-ip6: no
		username: ""
		chroot: ""
		database: ""
		zonesdir: "$Z"
		pidfile: "$T/nsd.pid"
		xfrdfile: "$T/xfrd.state"
		zonelistfile: "$T/zone.list"
		logfile: "$T/nsd.log"
		# No response rate limiting: its default (200 answers/s for one zone's
		# NXDOMAINs to one /24) drops queries of a 1,000-recipient list.
		rrl-ratelimit: 0
	remote-control:
		control-enable: no
	CONF
	for name in "$@"; do
		printf 'zone:\n\tname: %s\n\tzonefile: %s.zone.signed\n' "$name" "$name" >> "$T/nsd.conf"
	done
	rm -f "$T/nsd.pid"
	nsd -c "$T/nsd.conf" || return 1
	for _ in $(seq 1 100); do [ -s "$T/nsd.pid" ] && break; sleep 0.1; done
	[ -s "$T/nsd.pid" ] || return 1
	NSD_PID=$(cat "$T/nsd.pid")
	echo "$NSD_PID" >> "$T/pids"
}

dns_stop_nsd() {
	[ -n "$NSD_PID" ] && kill "$NSD_PID" 2>/dev/null
	NSD_PID=
}
