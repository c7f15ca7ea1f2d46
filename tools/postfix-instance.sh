# postfix-instance.sh - sourced by the tests, the demo and the benchmarks.
#
# postfix_instance DIR SMTP_PORT REINJECT_PORT RELAY_PORT MILTER DOMAIN [LINE...]
#   Create and start a private Postfix instance for DOMAIN in DIR (its own
#   main.cf, master.cf, queue and log; no chroot; DNS lookups disabled)
#   that listens on 127.0.0.1:SMTP_PORT with MILTER ("unix:/path", or ""
#   for none) as smtpd and non-smtpd milter, on REINJECT_PORT with the same
#   milter named "cables-reinject" ({daemon_name}; without milters when
#   POSTFIX_REINJECT_NO_MILTER=yes, for benchmarks), and relays every remote
#   domain to 127.0.0.1:RELAY_PORT.  Each
#   LINE is one more main.cf line.  Returns non-zero (after printing Postfix's complaint)
#   when the instance does not start.
# postfix_instance_maildir DIR SMTP_PORT REINJECT_PORT RELAY_PORT MILTER DOMAIN BASE USERS [LINE...]
#   The same, also delivering mail for USERS ("bob carol") of DOMAIN to
#   Maildirs BASE/USER/Maildir/ (as nobody, through virtual(8)).
# postfix_instance_stop DIR

POSTFIX_MASTER_TEMPLATE=$(cd "$(dirname "${POSTFIX_INSTANCE_SH:-$0}")" 2>/dev/null && pwd)/postfix-master.cf

postfix_instance() {
	pi_dir=$1 pi_smtp=$2 pi_reinject=$3 pi_relay=$4 pi_milter=$5 pi_domain=$6
	shift 6
	mkdir -p "$pi_dir/queue" "$pi_dir/data"
	chown postfix "$pi_dir/data"
	pi_open='s/^  -o milter_macro_daemon_name=cables-reinject.*/  -o smtpd_milters= -o non_smtpd_milters= -o receive_override_options=no_milters/'
	[ "${POSTFIX_REINJECT_NO_MILTER:-no}" = yes ] || pi_open=
	sed -e "s/@SMTP_PORT@/127.0.0.1:$pi_smtp/" -e "s/@REINJECT_PORT@/127.0.0.1:$pi_reinject/" ${pi_open:+-e "$pi_open"} \
		"$POSTFIX_MASTER_TEMPLATE" > "$pi_dir/master.cf"
	cat > "$pi_dir/main.cf" <<-CF
	compatibility_level = 3.6
	queue_directory = $pi_dir/queue
	data_directory = $pi_dir/data
	inet_interfaces = loopback-only
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	myhostname = mx.$pi_domain
	mydomain = $pi_domain
	myorigin = $pi_domain
	mydestination =
	relayhost = [127.0.0.1]:$pi_relay
	smtp_dns_support_level = disabled
	maillog_file = $pi_dir/maillog
	maillog_file_prefixes = $pi_dir, /var, /dev/stdout
	smtpd_milters = $pi_milter
	non_smtpd_milters = \$smtpd_milters
	milter_default_action = tempfail
	smtpd_relay_restrictions = permit_mynetworks, reject
	message_size_limit = 104857600
	virtual_mailbox_limit = 0
	biff = no
	append_dot_mydomain = no
	delay_warning_time = 0
	queue_run_delay = 1s
	minimal_backoff_time = 1s
	maximal_backoff_time = 2s
	CF
	for pi_line in "$@"; do printf '%s\n' "$pi_line" >> "$pi_dir/main.cf"; done
	if ! postfix -c "$pi_dir" start >/dev/null 2>&1; then
		echo "postfix in $pi_dir does not start:" >&2
		script -qc "postfix -c $pi_dir check" /dev/null >&2
		return 1
	fi
}

postfix_instance_maildir() {
	pm_dir=$1 pm_smtp=$2 pm_reinject=$3 pm_relay=$4 pm_milter=$5 pm_domain=$6 pm_base=$7 pm_users=$8
	shift 8
	pm_map=""
	for pm_user in $pm_users; do pm_map="$pm_map $pm_user@$pm_domain=$pm_user/Maildir/"; done
	mkdir -p "$pm_base"
	chown 65534:65534 "$pm_base"
	postfix_instance "$pm_dir" "$pm_smtp" "$pm_reinject" "$pm_relay" "$pm_milter" "$pm_domain" \
	    "virtual_mailbox_domains = $pm_domain" "virtual_mailbox_base = $pm_base" \
	    "virtual_mailbox_maps = inline:{$pm_map }" \
	    "virtual_uid_maps = static:65534" "virtual_gid_maps = static:65534" "$@"
}

postfix_instance_stop() {
	[ -f "$1/main.cf" ] && postfix -c "$1" stop >/dev/null 2>&1
	return 0
}
