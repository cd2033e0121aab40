#!/usr/bin/env bash
# tools/deps.sh: install what landro builds and tests with, idempotently.
#
# 1. Debian 12 packages (libfuse3, libevent, LMDB, build tools, the tools the
#    integration tests drive) through apt-get, only those not yet installed.
# 2. wolfSSL 5.7.2 (QUIC API, x86-64 assembly, AES-NI) and ngtcp2 1.11.0
#    (wolfSSL crypto backend) from Debian 13's source packages, built as
#    static libraries into .deps/ at the top of the tree.
#
# Debian 12's libwolfssl is built without QUIC and without assembly, and
# Debian ships no ngtcp2 wolfSSL backend, hence step 2. The trixie deb-src
# entry lives in a private apt configuration under .deps/apt, so the
# machine's own apt sources are never changed. apt verifies every file it
# downloads against the signed Sources index.
#
# Re-running is cheap: each step checks a stamp or dpkg first.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
deps="$top/.deps"
WOLFSSL_VER=5.7.2
NGTCP2_VER=1.11.0
stamp="$deps/.stamp-wolfssl-$WOLFSSL_VER-ngtcp2-$NGTCP2_VER-v2"
jobs=$(nproc 2>/dev/null || echo 2)

say() { printf 'deps: %s\n' "$*" >&2; }
die() { printf 'deps: %s\n' "$*" >&2; exit 1; }

sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install Debian packages"
    sudo="sudo"
fi

pkgs=(build-essential pkg-config autoconf automake libtool dpkg-dev cmake
      libfuse3-dev fuse3 libevent-dev liblmdb-dev lmdb-utils libinih-dev
      clang llvm libclang-rt-14-dev
      attr acl git rsync sqlite3 tar xxd iproute2 python3 util-linux procps psmisc)
missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install failed for: ${missing[*]}"
fi

if [ -f "$stamp" ] && [ -f "$deps/lib/libngtcp2_crypto_wolfssl.a" ] \
   && [ -f "$deps/lib/libwolfssl.a" ]; then
    exit 0
fi

say "building wolfSSL $WOLFSSL_VER and ngtcp2 $NGTCP2_VER from Debian 13 sources into .deps/"
rm -rf "$deps/src" "$deps/include" "$deps/lib" "$deps/share" "$deps/bin"
mkdir -p "$deps/apt/lists/partial" "$deps/apt/cache/archives/partial" \
         "$deps/apt/sources.list.d" "$deps/src"

keyring=/usr/share/keyrings/debian-archive-trixie-stable.gpg
[ -f "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat > "$deps/apt/sources.list" <<SRC
deb-src [signed-by=$keyring] http://deb.debian.org/debian trixie main
SRC
cat > "$deps/apt/apt.conf" <<CONF
Dir::Etc::SourceList "$deps/apt/sources.list";
Dir::Etc::SourceParts "$deps/apt/sources.list.d";
Dir::State::Lists "$deps/apt/lists";
Dir::Cache "$deps/apt/cache";
APT::Sandbox::User "root";
CONF
export APT_CONFIG="$deps/apt/apt.conf"
apt-get update -qq >/dev/null 2>&1 || apt-get update || die "apt-get update for trixie sources failed"

cd "$deps/src"
# --download-only: dpkg-source is not needed, and a .dsc that a mirror lacks
# (seen here for ngtcp2) must not stop us as long as the signed-index-checked
# upstream tarball arrived.
for src in wolfssl ngtcp2; do
    apt-get source --download-only --only-source "$src" >/dev/null 2>&1 \
        || apt-get source --download-only --only-source "$src" >/dev/null 2>&1 || true
done
wtar=$(ls wolfssl_${WOLFSSL_VER}.orig.tar.* 2>/dev/null | head -n1)
ntar=$(ls ngtcp2_${NGTCP2_VER}.orig.tar.* 2>/dev/null | head -n1)
[ -n "$wtar" ] || die "trixie source for wolfssl $WOLFSSL_VER not found (apt-get source wolfssl)"
[ -n "$ntar" ] || die "trixie source for ngtcp2 $NGTCP2_VER not found (apt-get source ngtcp2)"
tar xf "$wtar"
tar xf "$ntar"
wdir=$(ls -d wolfssl-${WOLFSSL_VER}* | head -n1)
ndir=$(ls -d ngtcp2-${NGTCP2_VER}* | head -n1)

log="$deps/build.log"
: > "$log"
(
    cd "$wdir"
    ./autogen.sh
    ./configure --prefix="$deps" --enable-static --disable-shared --with-pic \
        --enable-quic --enable-intelasm --enable-aesni --enable-harden \
        --enable-tls13 --disable-oldtls --enable-session-ticket --enable-earlydata \
        --enable-alpn --enable-sni --enable-certgen --enable-keygen --enable-certext \
        --enable-ecc --enable-curve25519 --enable-ed25519 --enable-aesgcm \
        --enable-chacha --enable-poly1305 --enable-sha512 --enable-hkdf \
        --disable-examples --disable-crypttests --disable-benchmark
    make -j"$jobs"
    make install
) >>"$log" 2>&1 || die "wolfSSL build failed, see $log"
(
    cd "$ndir"
    ./configure --prefix="$deps" --enable-static --disable-shared --with-pic \
        --enable-lib-only --with-wolfssl --without-openssl --without-gnutls \
        --without-boringssl --without-picotls --without-libnghttp3 --without-libev \
        --without-jemalloc LIBS=-lm PKG_CONFIG_PATH="$deps/lib/pkgconfig"
    make -j"$jobs"
    make install
) >>"$log" 2>&1 || die "ngtcp2 build failed, see $log"

rm -rf "$deps/src"
touch "$stamp"
say "done: $(ls "$deps"/lib/*.a | xargs -n1 basename | tr '\n' ' ')"
