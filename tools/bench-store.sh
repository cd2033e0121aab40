#!/usr/bin/env bash
# tools/bench-store.sh [SIZE] - the store layer's figures against baselines
# measured in the same run on the same machine (SIZE default 1G; K/M/G):
#   chunking    landro-bench cdc (FastCDC, 64 KiB average) against landro's
#               own SHA-256 (the chunker must not be what limits a write)
#   sha256      landro-bench hash (wolfCrypt, 64 KiB blocks) against
#               `openssl speed -bytes 65536 sha256` and `sha256sum` of a
#               SIZE file in /dev/shm
#   store put   SIZE as 64 KiB chunks: hash + st_chunk_put + one extent each,
#               256 per transaction, against `dd` of SIZE into a new file in
#               the same directory (buffered, no fsync: neither waits for
#               the disk, the sync is shown apart)
#   store get   st_chunk_get zero-copy of every chunk, against `dd` reading
#               that (cached) file back
#   file write  SIZE through st_file_write (chunk + hash + put), against dd
#   file read   st_file_read of that file, against dd reading back
#   scattered   batches of 4096 random 4 KiB writes into a 256 MiB file,
#   writes      one transaction each, through st_file_writev against the
#               same batches written range by range (writes per CPU second);
#               and isolated (ST_WRITE_ISOLATE, what fs/ does), its later
#               re-chunk counted in, against st_file_writev's runs
# Each landro figure is also given per CPU second (the machine is shared:
# the CPU-time figure is what one core does undisturbed). The store lives
# under $BENCH_DIR (default $TMPDIR or /tmp: the real disk here).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=$top/${O:-build}/bin/landro-bench
SIZE=${1:-1G}
[ -x "$B" ] || { echo "bench-store: $B is not built (run make)"; exit 1; }

bytes=$(numfmt --from=iec "$SIZE" 2>/dev/null) || { echo "bench-store: bad size '$SIZE'"; exit 1; }
mib=$((bytes >> 20))
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/landro-bench-store-XXXXXX") || exit 1
shm=/dev/shm/landro-bench-store-$$
cleanup() { rm -rf "$work" "$shm"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# rate BYTES START END -> MB/s (10^6)
rate() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }'; }
field() { sed -nE "s|$2|\\1|p" <<<"$1" | head -n1; }
fail=0
need() { [ -n "$2" ] || { echo "bench-store: no figure for $1"; fail=1; }; }

echo "bench-store: $mib MiB, $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# --- chunking and hashing (in memory) ---------------------------------
cdc=$("$B" cdc --bytes "$SIZE") || { echo "bench-store: landro-bench cdc failed"; exit 1; }
echo "$cdc" >&2
hash=$("$B" hash --bytes "$SIZE") || { echo "bench-store: landro-bench hash failed"; exit 1; }
echo "$hash" >&2
cdc_gb=$(field "$cdc" '.*best of 3 = ([0-9.]+) GB/s.*'); cdc_cpu=$(field "$cdc" '.*per cpu second ([0-9.]+) GB/s.*')
sha_gb=$(field "$hash" '.*best of 3 = ([0-9.]+) GB/s.*'); sha_cpu=$(field "$hash" '.*per cpu second ([0-9.]+) GB/s.*')
need cdc "$cdc_gb"; need sha256 "$sha_gb"

ossl=$(openssl speed -bytes 65536 -seconds 3 sha256 2>/dev/null | awk '$1 == "sha256" { sub(/k$/, "", $2); printf "%.2f", $2 * 1000 / 1e9 }')
need "openssl speed" "$ossl"
head -c "$bytes" /dev/urandom >"$shm" || { echo "bench-store: cannot write $shm"; exit 1; }
s=$(now); sha256sum "$shm" >/dev/null; e=$(now)
sum_gb=$(awk -v b="$bytes" -v s="$s" -v e="$e" 'BEGIN { printf "%.2f", b / (e - s) / 1e9 }')
rm -f "$shm"

# Baselines on the same disk: dd into a new file (page cache, no fsync)
# and back out of the cache. Run before the store, so that both write into
# pages the kernel has to find afresh: in a VM the first touch of a page the
# host has not backed yet costs far more than reusing a freed one (see
# docs/PERFORMANCE.md), and whoever runs second would win.
s=$(now); dd if=/dev/zero of="$work/dd" bs=1M count="$mib" status=none; e=$(now)
ddw=$(rate "$bytes" "$s" "$e")
s=$(now); dd if="$work/dd" of=/dev/null bs=1M status=none; e=$(now)
ddr=$(rate "$bytes" "$s" "$e")
rm -f "$work/dd"

# --- the store ----------------------------------------------------------
st=$("$B" store --dir "$work/store" --bytes "$SIZE") || { echo "bench-store: landro-bench store failed"; exit 1; }
echo "$st" >&2
put=$(field "$st" '^put: .* = ([0-9]+) MB/s.*'); put_cps=$(field "$st" '^put: .* MB/s, ([0-9]+) chunks/s.*')
put_cpu=$(field "$st" '^put: .*per cpu second ([0-9]+) MB/s.*')
get=$(field "$st" '^get: .* = ([0-9]+) MB/s.*'); get_cps=$(field "$st" '^get: .* MB/s, ([0-9]+) chunks/s.*')
get_cpu=$(field "$st" '^get: .*per cpu second ([0-9]+) MB/s.*')
fw=$(field "$st" '^file_write: .* = ([0-9]+) MB/s.*'); fw_cpu=$(field "$st" '^file_write: .*per cpu second ([0-9]+) MB/s.*')
fr=$(field "$st" '^file_read: .* = ([0-9]+) MB/s.*'); fr_cpu=$(field "$st" '^file_read: .*per cpu second ([0-9]+) MB/s.*')
syncs=$(field "$st" '^sync: ([0-9.]+) s.*')
need put "$put"; need get "$get"; need file_write "$fw"; need file_read "$fr"
rm -rf "$work/store"
sc=$("$B" scatter --dir "$work/scatter") || { echo "bench-store: landro-bench scatter failed"; exit 1; }
echo "$sc" >&2
sc_one=$(field "$sc" '^scatter: one by one.* = ([0-9]+) writes per cpu second.*')
sc_joined=$(field "$sc" '^scatter: st_file_writev.* = ([0-9]+) writes per cpu second.*')
sc_iso=$(field "$sc" '^scatter: isolated \+ re-chunk.* = ([0-9]+) writes per cpu second.*')
need scatter "$sc_joined"; need scatter "$sc_iso"
rm -rf "$work/scatter"


ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\n%-40s %14s %14s %8s %14s\n' "landro store ($mib MiB)" landro baseline ratio "landro/cpu-s"
row() { printf '%-40s %14s %14s %8s %14s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4"; }
row "FastCDC chunking (GB/s) vs own sha256" "$cdc_gb" "$sha_gb" "$cdc_cpu"
row "sha256 64K blocks (GB/s) vs openssl" "$sha_gb" "$ossl" "$sha_cpu"
row "sha256 (GB/s) vs sha256sum" "$sha_gb" "$sum_gb" "$sha_cpu"
row "put 64K chunks (MB/s) vs dd write" "$put" "$ddw" "$put_cpu"
row "get 64K chunks (MB/s) vs dd read" "$get" "$ddr" "$get_cpu"
row "file_write chunk+hash+put (MB/s) vs dd" "$fw" "$ddw" "$fw_cpu"
row "file_read (MB/s) vs dd read" "$fr" "$ddr" "$fr_cpu"
row "4096 random 4K writes/txn vs one by one" "$sc_joined" "$sc_one" "(writes/cpu-s)"
row "  isolated + re-chunk vs runs re-chunked" "$sc_iso" "$sc_joined" "(writes/cpu-s)"
printf '%-40s %14s\n' "put (chunks/s)" "$put_cps"
printf '%-40s %14s\n' "get (chunks/s)" "$get_cps"
printf '%-40s %14s\n' "st_sync after the puts (s)" "$syncs"
exit $fail
