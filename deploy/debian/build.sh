#!/bin/sh
# Build vipd_<version>_<arch>.deb from the tree with dpkg-deb.
# usage: deploy/debian/build.sh OUTDIR VERSION
# VERSION is the Debian version (UPSTREAM-REVISION); run from the repository
# root. Environment: GO (go), SOURCE_DATE_EPOCH (the pages' and the
# changelog's date; default the commit's), DEB_MAINTAINER, COMMIT.
set -eu

out=$1
version=$2
upstream=${version%-*}
GO=${GO:-go}
arch=$(dpkg --print-architecture)
maint=${DEB_MAINTAINER:-vipd developers <vipd@example.org>}
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
commit=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
# The unit directory of this Debian release (/lib before the /usr merge).
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /usr/lib/systemd/system)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
doc=$root/usr/share/doc/vipd
umask 022
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root$unitdir" "$root/usr/lib/sysusers.d" \
	"$root/etc/vipd" "$root/usr/share/vipd/prometheus" "$doc" \
	"$root/usr/share/man/man8" "$root/usr/share/man/man5" \
	"$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions"

CGO_ENABLED=0 $GO build -trimpath \
	-ldflags "-s -w -X main.version=$upstream -X main.commit=$commit" \
	-o "$root/usr/sbin/vipd" ./cmd/vipd

# The unit with the package's paths and its man pages, without the notes
# on installing by hand.
sed -e '/^# Install:/,/^\[Unit\]/{/^\[Unit\]/!d}' \
	-e 's|/usr/local/sbin/vipd|/usr/sbin/vipd|g' \
	-e '/^Description=/a Documentation=man:vipd(8) man:vipd.yaml(5)' \
	deploy/vipd.service >"$root$unitdir/vipd.service"
install -m 0644 deploy/vipd.sysusers "$root/usr/lib/sysusers.d/vipd.conf"
install -m 0640 deploy/debian/vipd.yaml "$root/etc/vipd/vipd.yaml"
install -m 0644 deploy/prometheus/alerts.yml deploy/prometheus/scrape.yml "$root/usr/share/vipd/prometheus/"

gen=$stage/gen
$GO run ./internal/manual/gen -out "$gen" -version "$upstream" -date "$date" -example deploy/debian/vipd.yaml
gzip -9n <"$gen/vipd.8" >"$root/usr/share/man/man8/vipd.8.gz"
gzip -9n <"$gen/vipd.yaml.5" >"$root/usr/share/man/man5/vipd.yaml.5.gz"
install -m 0644 "$gen/vipd.bash" "$root/usr/share/bash-completion/completions/vipd"
install -m 0644 "$gen/_vipd" "$root/usr/share/zsh/vendor-completions/_vipd"

install -m 0644 deploy/debian/copyright "$doc/copyright"
# The example configuration is 0640 on purpose (it may come to hold auth_pass).
# The binary is a static Go build, as Debian's own Go packages are (lintian
# exempts those by their golang-go build dependency, which a package built
# with dpkg-deb has no source package to declare).
mkdir -p "$root/usr/share/lintian/overrides"
{
	echo 'vipd: non-standard-file-perm 0640 != 0644 [etc/vipd/vipd.yaml]'
	echo 'vipd: statically-linked-binary [usr/sbin/vipd]'
} >"$root/usr/share/lintian/overrides/vipd"
{
	printf 'vipd (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Package built from commit %s.\n\n' "$commit"
	printf ' -- %s  %s\n' "$maint" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.Debian.gz"

install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
echo /etc/vipd/vipd.yaml >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: vipd
Version: $version
Architecture: $arch
Maintainer: $maint
Installed-Size: $size
Depends: adduser
Section: net
Priority: optional
Description: VRRP floating-VIP daemon
 vipd keeps a service address reachable while the machine behind it fails
 or is taken down. The nodes of an HA pair elect a master with VRRP (RFC 5798
 version 3, RFC 3768 version 2); the master carries each virtual IP as an
 alias on its interface and announces it with gratuitous ARP. It speaks the
 same protocol as keepalived's VRRP side.
CONTROL
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/vipd_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
