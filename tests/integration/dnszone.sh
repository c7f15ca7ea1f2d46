# dnszone.sh - sourced by tests that need DNS: DNSSEC-signed zones served by
# a real nsd on loopback (after rig.sh; uses $T).
#
#   dns_owner LOCAL                  the RFC 7929/8162 owner label of a local part
#   dns_sign_zone NAME EXPIRY INCEPTION
#                                    sign $Z/NAME.zone (ECDSA P-256 ZSK and KSK) into
#                                    NAME.zone.signed; its DS goes to $T/anchors
#   dns_start_nsd PORT NAME...       serve those zones on 127.0.0.1@PORT ($NSD_PID)
#   dns_stop_nsd

Z=$T/zones
mkdir -p "$Z"
NSD_PID=

dns_owner() { /usr/bin/python3 -c "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:56])" "$1"; }

dns_sign_zone() {
	( cd "$Z" &&
	  zsk=$(ldns-keygen -a ECDSAP256SHA256 "$1") && ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$1") &&
	  ldns-signzone -e "$2" -i "$3" "$1.zone" "$zsk" "$ksk" && cat "$ksk.ds" >> "$T/anchors" )
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
	remote-control:
		control-enable: no
	CONF
	for name in "$@"; do
		printf 'zone:\n\tname: %s\n\tzonefile: %s.zone.signed\n' "$name" "$name" >> "$T/nsd.conf"
	done
	rm -f "$T/nsd.pid"
	nsd -c "$T/nsd.conf" || return 1
	wait_for 10 test -s "$T/nsd.pid" || return 1
	NSD_PID=$(cat "$T/nsd.pid")
	echo "$NSD_PID" >> "$T/pids"
}

dns_stop_nsd() {
	[ -n "$NSD_PID" ] && kill "$NSD_PID" 2>/dev/null
	NSD_PID=
}
