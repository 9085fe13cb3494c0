#!/bin/bash
# Regenerates the *.hex vectors in this directory from a real keepalived over
# IPv6. Needs root, keepalived, tcpdump and python3; the tests only read the
# .hex files and need none of these.
#
# Usage: capture.sh [NAME...]   (default: every NAME.conf here)
#
# For each NAME.conf it builds a two-namespace lab (pktcap6-node runs
# keepalived on veth pktcap6-a, link-local fe80::201, fd00:18::201/64;
# pktcap6-tap runs tcpdump on the peer pktcap6-b), captures three adverts into
# NAME.hex and the priority-0 advert keepalived sends on SIGTERM into
# NAME-shutdown.hex. Each .hex file is a comment line (the .conf's first line)
# and then one IPv6 packet per line, IPv6 header included. The link-local is
# fixed (addrgenmode none, nodad) so that the vectors are reproducible.
# Nothing leaves the lab.
set -u
here=$(cd "$(dirname "$0")" && pwd)
work=/tmp/pktcap6
node=pktcap6-node tap=pktcap6-tap
kpid= tpid=

cleanup() {
	if [ -n "$kpid" ]; then kill "$kpid" 2>/dev/null; wait "$kpid" 2>/dev/null; fi
	if [ -n "$tpid" ]; then kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null; fi
	kpid= tpid=
	ip netns del $node 2>/dev/null
	ip netns del $tap 2>/dev/null
}
trap cleanup EXIT

# tohex COMMENT PCAP: prints COMMENT, then each Ethernet frame's IPv6 packet.
tohex() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
comment, path = sys.argv[1], sys.argv[2]
d = open(path, 'rb').read()
if struct.unpack('<I', d[:4])[0] != 0xa1b2c3d4 or struct.unpack('<I', d[20:24])[0] != 1:
    sys.exit('%s: not a little-endian Ethernet pcap' % path)
print(comment)
o = 24
while o < len(d):
    incl = struct.unpack('<I', d[o+8:o+12])[0]
    frame = d[o+16:o+16+incl]
    o += 16 + incl
    if frame[12:14] != b'\x86\xdd':
        sys.exit('%s: not IPv6' % path)
    print(frame[14:].hex())
PY
}

mkdir -p $work
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in "$here"/*.conf; do names+=("$(basename "$f" .conf)"); done
fi

for name in "${names[@]}"; do
	conf=$here/$name.conf
	cleanup
	ip netns add $node && ip netns add $tap || exit 1
	ip -n $node link add pktcap6-a type veth peer name pktcap6-b netns $tap || exit 1
	ip -n $node link set lo up
	ip -n $tap link set lo up
	ip -n $node link set pktcap6-a address 02:00:00:00:02:01 addrgenmode none
	ip -n $tap link set pktcap6-b addrgenmode none
	ip -n $node link set pktcap6-a up
	ip -n $tap link set pktcap6-b up
	ip -n $node addr add fe80::201/64 dev pktcap6-a nodad
	ip -n $node addr add fd00:18::201/64 dev pktcap6-a nodad

	ip netns exec $tap timeout 30 tcpdump -i pktcap6-b -U -c 3 -w $work/$name.pcap 'ip6 proto 112' 2>$work/$name.tcpdump.log &
	tpid=$!
	sleep 1
	ip netns exec $node keepalived -n -l -D --vrrp -f "$conf" \
		-p $work/$name.pid -r $work/$name-vrrp.pid >$work/$name.keepalived.log 2>&1 &
	kpid=$!
	wait $tpid || { echo "$name: no adverts captured, see $work/$name.keepalived.log" >&2; exit 1; }
	tpid=

	# The shutdown advert: priority (IPv6 header 40 + 2) zero.
	ip netns exec $tap timeout 10 tcpdump -i pktcap6-b -U -c 1 -w $work/$name-shutdown.pcap \
		'ip6 proto 112 and ip6[42] = 0' 2>>$work/$name.tcpdump.log &
	tpid=$!
	sleep 1
	kill $kpid
	wait $kpid
	kpid=
	wait $tpid || { echo "$name: no shutdown advert captured" >&2; exit 1; }
	tpid=

	comment="$(head -1 "$conf") ($name.conf); src fe80::201 dst ff02::12"
	tohex "$comment" $work/$name.pcap >"$here/$name.hex" || exit 1
	tohex "${comment/keepalived 2.2.7: /keepalived 2.2.7, advert sent on SIGTERM (priority 0): }" \
		$work/$name-shutdown.pcap >"$here/$name-shutdown.hex" || exit 1
	echo "$name: $(($(wc -l <"$here/$name.hex") - 1)) + 1 packets"
done
