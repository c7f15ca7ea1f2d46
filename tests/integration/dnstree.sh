# dnstree.sh - sourced after dnszone.sh: an internet-shaped DNS tree in one
# nsd on loopback.  A signed root "." (its DS in $T/root.ds, the only trust
# anchor a test gives keyd), a TLD "test." signed with NSEC3 (no salt, 0
# extra iterations, as RFC 9276 asks), and child zones of each kind a
# validator must tell apart.  nsd answers a DS query from the parent's zone
# and everything else from the deepest zone it serves.
#
#   tree_zone NAME [STORE_CONF]     $Z/NAME.zone: SOA (negative TTL 60), NS, the
#                                   glue, and the keys STORE_CONF's store publishes
#   tree_delegate PARENT CHILD [DS] a delegation (NS and glue) in PARENT's zone;
#                                   with DS (a file of DS lines), the DS too
#   tree_keys NAME                  ECDSA P-256 ZSK and KSK for NAME (once); $Z/NAME.ds
#   tree_sign NAME nsec|nsec3|optout|iter|huge [EXPIRY [INCEPTION]]
#                                   sign $Z/NAME.zone into NAME.zone.signed
#   tree_unsigned NAME              serve $Z/NAME.zone as it is
#   tree_smimea OWNER CERT_PEM      an SMIMEA 3 0 0 line for OWNER (a full name)

#
# The kinds of child (built by tree_build): see dns_tree.sh.

TREE_EXP=20351231000000
TREE_INC=20250101000000

tree_zone() {
	origin=$(tree_fqdn "$1")
	host=$origin
	[ "$1" = . ] && host=test.	# the root's server is ns.test. (glue in the root)
	{
		printf '$ORIGIN %s\n$TTL 300\n' "$origin"
		printf '@ IN SOA ns.%s admin.%s 1 3600 600 86400 60\n@ IN NS ns.%s\n' "$host" "$host" "$host"
		[ "$1" != . ] && printf 'ns IN A 127.0.0.1\n'
		[ -n "${2:-}" ] && "$KEYCTL" -c "$2" publish --dns --domain "$1"
	} > "$Z/$1.zone"
}

tree_fqdn() { case $1 in .) echo . ;; *) echo "$1." ;; esac; }

tree_delegate() {
	{
		printf '%s. IN NS ns.%s.\nns.%s. IN A 127.0.0.1\n' "$2" "$2" "$2"
		[ -n "${3:-}" ] && sed 's/[[:space:]]\{1,\}/ /g' "$3"
	} >> "$Z/$1.zone"
}

tree_keys() {
	[ -s "$Z/$1.keys" ] && return 0
	( cd "$Z" || exit 1
	  zsk=$(ldns-keygen -a ECDSAP256SHA256 "$1") && ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$1") || exit 1
	  echo "$zsk $ksk" > "$1.keys"
	  cp "$ksk.ds" "$1.ds" )
}

tree_sign() {
	tree_keys "$1" || return 1
	case $2 in
	nsec) flags= ;;
	nsec3) flags="-n -t 0" ;;
	optout) flags="-n -t 0 -p" ;;
	iter) flags="-n -t 200" ;;	# more NSEC3 iterations than RFC 9276 asks for (unbound's default limit: 150)
	huge) flags="-n -t 3000" ;;	# more than RFC 5155 allows (2500): no validator checks such a denial
	esac
	( cd "$Z" || exit 1
	  read -r zsk ksk < "$1.keys"
	  # shellcheck disable=SC2086
	  ldns-signzone $flags -e "${3:-$TREE_EXP}" -i "${4:-$TREE_INC}" "$1.zone" "$zsk" "$ksk" )
}

tree_unsigned() { cp "$Z/$1.zone" "$Z/$1.zone.signed"; }

tree_smimea() {
	printf '%s IN SMIMEA 3 0 0 %s\n' "$1" "$(openssl x509 -in "$2" -outform DER | xxd -p | tr -d '\n')"
}

