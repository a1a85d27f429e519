# Sourced by the distro test scripts: the Debian mirror this machine's apt uses, and cached
# debootstrap roots.
#
# apt_mirror prints the first Debian archive URI of the apt sources (not the security archive),
# so the tests work wherever apt works and no host name is written in them.
#
# cached_root NAME SUITE PACKAGES [SETUP] makes (once) a debootstrap root of SUITE with PACKAGES
# (comma separated) and keeps it as $PYCTL_DISTRO_CACHE/NAME.tar (default cache folder:
# /var/cache/pyctl-distro); SETUP, a function, runs on the fresh root before it is packed.
# PYCTL_DISTRO_FRESH=1 rebuilds it. unpack_root NAME DIR gives a pristine copy in DIR.

PYCTL_DISTRO_CACHE=${PYCTL_DISTRO_CACHE:-/var/cache/pyctl-distro}

apt_mirror() {
  local uri="" f
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    uri=$(awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' "$f" |
      grep -v -- '-security' | grep -E '^(https?|file)://' | grep -E '/debian/?$' | head -n1 || true)
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      # deb [options] URI suite components
      uri=$(sed -E 's/\[[^]]*\]//' "$f" |
        awk '$1=="deb" && $2 !~ /-security/ && $2 ~ /\/debian\/?$/ { print $2; exit }')
      [ -n "$uri" ] && break
    done
  fi
  shopt -u nullglob
  [ -n "$uri" ] || { echo "no Debian mirror found in the apt sources" >&2; return 1; }
  echo "${uri%/}"
}

cached_root() {
  local name=$1 suite=$2 packages=$3 setup=${4:-} tarball root mirror
  tarball=$PYCTL_DISTRO_CACHE/$name.tar
  if [ "${PYCTL_DISTRO_FRESH:-0}" = 1 ]; then rm -f "$tarball"; fi
  if [ -s "$tarball" ]; then
    return 0
  fi
  mirror=$(apt_mirror)
  mkdir -p "$PYCTL_DISTRO_CACHE"
  root=$(mktemp -d "$PYCTL_DISTRO_CACHE/.$name.XXXXXX")
  printf '[roots] %s: debootstrap %s from %s\n' "$name" "$suite" "$mirror" >&2
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" \
    >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -rf "$root" "$root.log"
    return 1
  fi
  echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  if [ -n "$setup" ] && ! "$setup" "$root"; then
    echo "[roots] $name: setting up the root failed" >&2
    rm -rf "$root" "$root.log"
    return 1
  fi
  # Written under another name first, so an interrupted run never leaves half a cache.
  tar -C "$root" --numeric-owner -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf "$root" "$root.log"
  printf '[roots] %s: cached as %s\n' "$name" "$tarball" >&2
}

unpack_root() {
  local name=$1 dir=$2
  mkdir -p "$dir"
  tar -C "$dir" --numeric-owner -xf "$PYCTL_DISTRO_CACHE/$name.tar"
}
