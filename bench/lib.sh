# bench/lib.sh: helpers the benchmark scripts share (sourced, not run).

# ratio A B: A/B as "1.23x", or n/a when either is not a number.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "n/a"; else printf "%.2fx", a / b }'; }

# median: the median of the numbers on stdin (one per line), empty when there are none.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# write_section REPORT LETTER FILE: puts FILE's text in REPORT as section "## (LETTER) ...":
# replaces that section (from its heading to the next "## " heading, its "###" subsections
# with it) when REPORT has it, appends it otherwise.
write_section() {
    local report=$1 letter=$2 file=$3
    if [ -f "$report" ] && grep -q "^## ($letter) " "$report"; then
        awk -v f="$file" -v h="## ($letter) " '
            index($0, h) == 1 { while ((getline l < f) > 0) print l; skip = 1; next }
            skip && /^## / { skip = 0; print "" }
            !skip' "$report" >"$report.new" && mv "$report.new" "$report"
    else
        { echo; cat "$file"; } >>"$report"
    fi
}

# free_port: a TCP port free on 127.0.0.1 now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# tap_check DEV: fails (with the reason on stderr) unless a tap device DEV can be made here:
# root, and no DEV yet (another run's).
tap_check() {
    [ "$(id -u)" = 0 ] || { echo "making the tap device $1 needs root" >&2; return 1; }
    [ ! -e "/sys/class/net/$1" ] || { echo "$1 exists already (another run?): delete it with ip link del $1" >&2; return 1; }
}

# tap_up DEV HOST_IP GUEST_IP: makes the tap device DEV with the host at HOST_IP/24. Every
# guest has QEMU's default MAC: a permanent neighbour entry for GUEST_IP spares the host an
# ARP round (and its 1 s retries while a guest boots). The caller deletes DEV (ip link del).
tap_up() {
    ip tuntap add "$1" mode tap
    ip addr add "$2/24" dev "$1"
    ip link set "$1" up
    ip neigh replace "$3" lladdr 52:54:00:12:34:56 dev "$1" nud permanent
}
