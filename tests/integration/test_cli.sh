#!/usr/bin/env bash
# test_cli.sh - everyday use of the landro command: --help everywhere,
# bad input (missing store, malformed and unknown peer ids, a bad config
# line, status with no daemon), the happy paths of init/id/volume/peer,
# compact (refused while mounted or open elsewhere; gives space back),
# `landro status` (text and --json, parsed) with two mounted peers, the
# user.landro.* attributes, pin, the mount helper form through mount.fuse3
# and `mount -t fuse.landro`, and `make install DESTDIR=...`.
# Needs root and /dev/fuse. Prints "N passed, N failed".
NAME=cli PORTBASE=48000
. "$(dirname "$0")/peers_lib.sh"
# expect STATUS PATTERN CMD...: CMD exits with STATUS and its stderr matches PATTERN
expect() {
    local want=$1 pat=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    local got=$?
    if [ "$got" = "$want" ] && grep -qE -- "$pat" "$T/err"; then
        return 0
    fi
    echo "  (exit $got, expected $want; stderr: $(head -c 300 "$T/err"); wanted /$pat/)"
    return 1
}

mkdir -p "$T/mnt-a" "$T/mnt-b" "$T/mnt-h"

# --- help and usage ---------------------------------------------------------
check "landro --help lists the commands" sh -c "'$L' --help | grep -q '^  status'"
for c in init mount unmount id volume peer status pin unpin compact; do
    check "landro $c --help exits 0 with a usage line" sh -c "'$L' $c --help | grep -q '^usage: landro $c'"
done
check "an unknown command is a usage error (2)" expect 2 "unknown command 'frobnicate'" "$L" frobnicate
check "a bad option is a usage error (2)" expect 2 "usage: landro status" "$L" status --bogus

# --- missing store ----------------------------------------------------------
NS=$T/no-such-store
check "id: missing store is named" expect 1 "store '$NS'" "$L" id --store "$NS"
check "volume: missing store is named" expect 1 "cannot open store '$NS'" "$L" volume --store "$NS"
check "status: missing store is named" expect 1 "cannot open store '$NS'" "$L" status --store "$NS"
check "peer list: missing store is named" expect 1 "cannot open store '$NS'" "$L" peer list --store "$NS"
check "mount: missing store is named" expect 1 "cannot open store '$NS'" "$L" mount -f --store "$NS" "$T/mnt-a"

# --- init, id, volume, peers ------------------------------------------------
check "init a" sh -c "'$L' init --store '$T/a' >/dev/null"
vol=$("$L" volume --store "$T/a")
check "volume prints 32 hex digits" sh -c "echo '$vol' | grep -qE '^[0-9a-f]{32}$'"
check "init b joining a's volume" sh -c "'$L' init --store '$T/b' --volume '$vol' >/dev/null"
check "-v and -q are accepted by every command" sh -c "'$L' -q id --store '$T/a' >/dev/null && '$L' volume -v --store '$T/a' >/dev/null"
ida=$("$L" id --store "$T/a")
idb=$("$L" id --store "$T/b")
check "id prints a device id" sh -c "echo '$ida' | grep -qE '^([A-Z2-7]{4}-){13}[A-Z2-7]$'"
check "peer add: malformed id is refused" expect 1 "malformed device id 'NOT-AN-ID'" "$L" peer add --store "$T/a" NOT-AN-ID 127.0.0.1:1
check "peer add: malformed address is refused" expect 1 "malformed peer address 'nowhere'" "$L" peer add --store "$T/a" "$idb" nowhere
check "peer remove: unknown id is refused" expect 1 "peer $idb is not known to store '$T/a'" "$L" peer remove --store "$T/a" "$idb"
check "peer add a -> b" "$L" peer add --store "$T/a" "$idb" "127.0.0.1:$(port 1)"
# B learns of A from a peer line in its landro.conf (added at mount).
printf 'peer = %s 127.0.0.1:%s\n' "$ida" "$(port 0)" > "$T/b/landro.conf"
check "peer list shows the peer and its address" sh -c "'$L' peer list --store '$T/a' | grep -q '$idb  127.0.0.1:$(port 1)'"
check "peer list: a peer never connected was never seen" sh -c "'$L' peer list --store '$T/a' | grep -q '$idb .* seen=never\$'"

# --- status with no daemon, bad config ---------------------------------------
check "status: no daemon running" expect 1 "store '$T/a' is not mounted \(no daemon answers on '$T/a/control.sock'\)" "$L" status --store "$T/a"
check "status of a directory that is not a landro mount" expect 1 "is not a mounted landro file system" "$L" status "$T/mnt-a"
printf '# landro.conf\nlisten = 127.0.0.1:%s\nfetch_timeout_ms = soon\n' "$(port 0)" > "$T/a/landro.conf"
check "mount: a bad config line names file and line" expect 1 "$T/a/landro.conf:3: bad fetch_timeout_ms 'soon'" "$L" mount --store "$T/a" "$T/mnt-a"
check "mount: nothing mounted after a bad config line" sh -c "! mountpoint -q '$T/mnt-a' && ! test -e '$T/a/control.sock'"
printf 'listen = 127.0.0.1:1\n[extra]\nlog_level = warn\n' > "$T/a/landro.conf"
check "mount: an unknown section is refused" expect 1 "landro.conf:3: unknown section '\[extra\]'" "$L" mount --store "$T/a" "$T/mnt-a"
printf 'peer = NOT-AN-ID 127.0.0.1:1\n' > "$T/a/landro.conf"
check "mount: a malformed peer line is refused" expect 1 "landro.conf:1: malformed peer 'NOT-AN-ID 127.0.0.1:1'" "$L" mount --store "$T/a" "$T/mnt-a"
printf 'peer = %s\n' "$idb" > "$T/a/landro.conf"
check "mount: a peer line without an address is refused" expect 1 "landro.conf:1: peer '$idb' has no address" "$L" mount --store "$T/a" "$T/mnt-a"
printf 'cache_quota = lots\n' > "$T/a/landro.conf"
check "mount: a bad cache_quota is refused" expect 1 "landro.conf:1: bad cache_quota 'lots'" "$L" mount --store "$T/a" "$T/mnt-a"
for bad in 0s 12x 36501d -3d ""; do
    printf 'forget_deleted_after = %s\n' "$bad" > "$T/a/landro.conf"
    check "mount: forget_deleted_after '$bad' is refused" expect 1 "landro.conf:1: bad forget_deleted_after '$bad'" "$L" mount --store "$T/a" "$T/mnt-a"
done
printf '\nlisten\n' > "$T/a/landro.conf"
check "mount: a line without '=' is refused" expect 1 "landro.conf:2: syntax error" "$L" mount --store "$T/a" "$T/mnt-a"
# A good file: A's listen address and log level come from it.
printf '# landro.conf\nlisten = 127.0.0.1:%s\nfetch_timeout_ms = 4000\nlog_level = warn\nforget_deleted_after = never\n' "$(port 0)" > "$T/a/landro.conf"
# Mounted over its own store the daemon would reach the store through itself.
check "mount: onto the store's own directory is refused" expect 1 "cannot mount on '$T/a': it is the store's own directory" timeout 20 "$L" mount --store "$T/a" "$T/a"
check "mount: onto a directory holding the store is refused" expect 1 "cannot mount on '$T': the store '$T/a' is inside it" timeout 20 "$L" mount --store "$T/a" "$T"

# --- two mounted peers ------------------------------------------------------
check "mount a (listen address from landro.conf)" sh -c "'$L' mount --store '$T/a' '$T/mnt-a' 2>>'$T/log-a'"
check "mount b (listen address from the flag)" sh -c "'$L' mount --store '$T/b' --listen '127.0.0.1:$(port 1)' '$T/mnt-b' 2>>'$T/log-b'"
check "a peer line in landro.conf was added to b's peers" sh -c "'$L' peer list --store '$T/b' | grep -q '$ida  127.0.0.1:$(port 0)'"
check "control socket is mode 0600" sh -c "[ \$(stat -c %a '$T/a/control.sock') = 600 ]"
healthy() { "$L" status --json --store "$T/a" | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(p["state"] == "healthy" for p in d["peers"]) else 1)'; }
check "status --json shows b as a healthy peer of a" wait_for 20 healthy
seen_b() { "$L" peer list --store "$T/a" | grep -q "$idb .* seen=20[0-9-]*T[0-9:]*Z\$"; }
check "peer list: b, connected, was seen" wait_for 20 seen_b
"$L" status --json --store "$T/a" > "$T/status.json"
check "status --json is valid JSON with the documented fields" python3 - "$T/status.json" "$ida" "$idb" "$vol" "$(port 0)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ida, idb, vol, port = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
assert d["version"] == 1, d["version"]
assert d["device"] == ida and d["volume"] == vol, (d["device"], d["volume"])
assert d["online"] is True
assert d["fetch_timeout_ms"] == 4000, d["fetch_timeout_ms"]
assert [l["port"] for l in d["listen"]] == [port], d["listen"]
p = [p for p in d["peers"] if p["id"] == idb]
assert len(p) == 1, d["peers"]
p = p[0]
for k in ("state", "address", "connections", "rtt_us", "last_pong_ms", "chunks_received",
          "bytes_received", "chunks_sent", "bytes_sent", "receive_bytes_per_s", "send_bytes_per_s",
          "timeouts", "errors", "fetches_in_flight", "reconnects", "last_error", "last_error_age_ms"):
    assert k in p, k
assert p["last_error"] is None or isinstance(p["last_error"], str), p
assert p["connections"] >= 1 and p["rtt_us"] > 0, p
t = d["transfers"]
assert isinstance(t["fetches_in_flight"], int) and t["receive_bytes_per_s"] >= 0 and t["send_bytes_per_s"] >= 0, t
c = d["cache"]
assert c["inodes"] >= 1 and c["map_bytes"] > 0 and c["local_chunks"] <= c["chunks"], c
assert 0 <= c["free_bytes"] <= c["map_bytes"], c
assert c["quota"] == 0 and c["bytes"] >= 0 and c["evicted_chunks"] == 0, c
assert d["conflicts"] == 0 and d["copies"] == 1, d
h = d["history"]
assert h["log_records"] >= 0 and h["tombstones"] >= 0 and h["forget_deleted_after_s"] is None, h
u = d["unreplicated_files"]
assert u is None or (isinstance(u, int) and u >= 0), u
PY
check "status text by mount point names the store and a healthy peer" sh -c "'$L' status '$T/mnt-b' > '$T/st.txt' && grep -q '^store: *$T/b' '$T/st.txt' && grep -q 'state healthy' '$T/st.txt' && grep -q 'in the store map ([0-9.]* [KMG]*i*B of it free)' '$T/st.txt'"
check "log_level = warn from landro.conf kept info messages out" sh -c "! grep -q 'info:' '$T/log-a'"

# --- data, attributes, pin, conflicts ------------------------------------------
dd if=/dev/urandom of="$T/mnt-a/data.bin" bs=1M count=4 status=none
mkdir -p "$T/mnt-a/dir/sub"
for i in 1 2 3; do head -c 300000 /dev/urandom > "$T/mnt-a/dir/sub/f$i"; done
sync "$T/mnt-a/data.bin"
sum_f2=$(sha256sum < "$T/mnt-a/dir/sub/f2")
check "data reaches b" wait_for 20 sh -c "[ \"\$(stat -c %s '$T/mnt-b/data.bin')\" = 4194304 ] && [ -f '$T/mnt-b/dir/sub/f3' ]"
chunks_a=$(getfattr 2>/dev/null --only-values -n user.landro.chunks "$T/mnt-a/data.bin" 2>/dev/null)
total=${chunks_a#*/}
check "user.landro.chunks on the writer is all local ($chunks_a)" sh -c "[ -n '$chunks_a' ] && [ '${chunks_a%/*}' = '$total' ] && [ '$total' -ge 8 ]"
chunks_b=$(getfattr 2>/dev/null --only-values -n user.landro.chunks "$T/mnt-b/data.bin" 2>/dev/null)
check "user.landro.chunks on the reader is none local before a read ($chunks_b)" [ "$chunks_b" = "0/$total" ]
check "user.landro.* is not listed (cp -a and rsync -X do not copy it)" sh -c "! getfattr -d -m - '$T/mnt-a/data.bin' 2>/dev/null | grep -q landro"
check "an unknown user.landro.* attribute is ENODATA" sh -c "getfattr -n user.landro.nope '$T/mnt-a/data.bin' 2>&1 | grep -q 'No such attribute'"
check "user.landro.conflict is 0 for an ordinary file" [ "$(getfattr 2>/dev/null --only-values -n user.landro.conflict "$T/mnt-a/data.bin")" = 0 ]
check "user.landro.store names the store" [ "$(getfattr 2>/dev/null --only-values -n user.landro.store "$T/mnt-b")" = "$T/b" ]
check "pin: refuses a path outside a landro mount" expect 1 "not on a mounted landro file system" "$L" pin "$T"
check "pin reads every file under a path" sh -c "'$L' pin '$T/mnt-b' > '$T/pin.out' 2>&1 && grep -q 'pinned 4 of 4 files' '$T/pin.out'"
check "after pin every chunk is local on b" [ "$(getfattr 2>/dev/null --only-values -n user.landro.chunks "$T/mnt-b/data.bin")" = "$total/$total" ]
check "pinned data equals the original" cmp -s "$T/mnt-a/data.bin" "$T/mnt-b/data.bin"
check "pin marks the mount's root pinned" [ "$(getfattr 2>/dev/null --only-values -n user.landro.pinned "$T/mnt-b")" = 1 ]
check "unpin: refuses a path outside a landro mount" expect 1 "not on a mounted landro file system" "$L" unpin "$T"
check "unpin clears the marks under a path" sh -c "'$L' unpin '$T/mnt-b' > '$T/unpin.out' 2>&1 && grep -q 'unpinned 1 ' '$T/unpin.out' && [ \"\$(getfattr --only-values -n user.landro.pinned '$T/mnt-b' 2>/dev/null)\" = 0 ]"
check "user.landro.pinned accepts only 0 or 1" sh -c "! setfattr -n user.landro.pinned -v 2 '$T/mnt-b/data.bin' 2>/dev/null"
check "the other user.landro.* attributes are read-only" sh -c "! setfattr -n user.landro.chunks -v 1 '$T/mnt-b/data.bin' 2>/dev/null"
echo copy > "$T/mnt-a/notes.sync-conflict-20250101-120000-ABCD.txt"
check "user.landro.conflict is 1 for a conflict copy" [ "$(getfattr 2>/dev/null --only-values -n user.landro.conflict "$T/mnt-a/notes.sync-conflict-20250101-120000-ABCD.txt")" = 1 ]
conflicts() { "$L" status --json --store "$T/$1" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["conflicts"] == 1 else 1)'; }
check "status counts the conflict copy on a" conflicts a
check "status counts the replicated conflict copy on b" wait_for 20 conflicts b
received() {
    "$L" status --json --store "$T/b" | python3 -c "
import json, sys
n = json.load(sys.stdin)['peers'][0]['chunks_received']
print('  (b received %d chunks from a; data.bin alone has $total)' % n)
sys.exit(0 if n >= $total else 1)"
}
check "status shows the chunks b received from a" wait_for 5 received
sent() {
    "$L" status --json --store "$T/a" | python3 -c "
import json, sys
p = json.load(sys.stdin)['peers'][0]
sys.exit(0 if p['chunks_sent'] >= $total and p['bytes_sent'] >= 4 * 1048576 else 1)"
}
check "status shows the chunks a sent to b" wait_for 5 sent
check "status text shows bytes sent" sh -c "'$L' status --store '$T/a' | grep -q 'sent [0-9]* chunks'"

check "unmount a" "$L" unmount "$T/mnt-a"
check "unmount b" "$L" unmount "$T/mnt-b"
check "daemons exit and remove their control sockets" wait_for 10 sh -c "! test -e '$T/a/control.sock' && ! test -e '$T/b/control.sock'"
check "status after unmount: not mounted" expect 1 "is not mounted" "$L" status --store "$T/a"

# --- the mount helper form ---------------------------------------------------
rm -f "$T/a/landro.conf"
mkdir -p "$T/bin"
ln -s "$L" "$T/bin/landro"
check "helper form refuses an unknown option" expect 2 "unknown mount option 'bogus' for store '$T/a'" "$L" "$T/a" "$T/mnt-h" -o rw,bogus
check "helper form mounts read-only with -o ro" bash -c "PATH='$T/bin':\$PATH mount.fuse3 '$T/a' '$T/mnt-h' -t landro -o nosuid,ro,offline 2>>'$T/log-h'"
check "the helper's ro reached the kernel" sh -c "grep ' $T/mnt-h ' /proc/mounts | awk '{ print \$4 }' | grep -q '^ro,'"
check "a write to the helper's ro mount is refused" expect 1 "Read-only file system" bash -c "echo x > '$T/mnt-h/ro-test'"
check "umount of the ro helper mount" umount "$T/mnt-h"
wait_for 10 sh -c "! test -e '$T/a/control.sock'"
check "mount.fuse3 -t landro mounts through the helper form" sh -c "PATH='$T/bin':\$PATH mount.fuse3 '$T/a' '$T/mnt-h' -t landro -o rw,nosuid,nodev,_netdev,x-systemd.automount,listen=127.0.0.1:$(port 2) 2>>'$T/log-h'"
check "the helper's listen= option reached the daemon" sh -c "'$L' status --json '$T/mnt-h' | grep -q '\"port\":$(port 2)'"
check "files written before are there" [ "$(sha256sum < "$T/mnt-h/dir/sub/f2")" = "$sum_f2" ]
check "umount of the helper mount" umount "$T/mnt-h"
check "its daemon exits" wait_for 10 sh -c "! test -e '$T/a/control.sock'"
# mount(8) runs helpers with a fixed PATH (/usr/local/bin, /usr/bin, ...):
# in a private mount namespace, put our landro at /usr/local/bin/landro.
if command -v unshare >/dev/null; then
    check "mount -t fuse.landro STORE MNT -o listen=... then umount" \
        unshare -m --propagation private sh -c "
            mount --bind '$T/bin' /usr/local/bin &&
            mount -t fuse.landro '$T/a' '$T/mnt-h' -o listen=127.0.0.1:$(port 3) 2>>'$T/log-h' &&
            grep -q ' $T/mnt-h fuse.landro ' /proc/mounts &&
            echo via-mount > '$T/mnt-h/via-mount.txt' &&
            grep -q via-mount '$T/mnt-h/via-mount.txt' &&
            '$L' status '$T/mnt-h' | grep -q 'UDP port $(port 3)' &&
            umount '$T/mnt-h'"
    # (no wait for that daemon to exit: umount returns before it has, and
    # landro mount waits for the store's lock while no daemon serves it)
    check "the file written through mount -t fuse.landro is in the store" sh -c "
        '$L' mount --store '$T/a' --offline '$T/mnt-h' &&
        grep -q via-mount '$T/mnt-h/via-mount.txt'; r=\$?; '$L' unmount '$T/mnt-h'; exit \$r"
else
    bad "unshare(1) is missing: mount -t fuse.landro not tested"
fi

# A store locked by a process that serves no control socket (a daemon
# on its way out) is waited for; one a live daemon serves fails at once
# (test_fs_posix.sh).
flock "$T/a/landro.lock" sleep 2 &
lock_pid=$!
sleep 0.3
t0=$(date +%s%N)
check "mount waits for a store lock held by a process that does not serve it" sh -c "
    '$L' mount --store '$T/a' --offline '$T/mnt-h' 2>'$T/lockwait.err' && mountpoint -q '$T/mnt-h'"
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
check "... it mounted once the lock was free (after ${waited} ms)" [ "$waited" -ge 1000 ]
check "... and said why it waited" grep -q "locked by a process that does not serve it" "$T/lockwait.err"
"$L" unmount "$T/mnt-h"
wait "$lock_pid" 2>/dev/null

# --- read-only mounts ---------------------------------------------------------
# -o ro: the kernel refuses every change with EROFS; reads work, and peers'
# changes still arrive.
wait_for 10 sh -c "! test -e '$T/a/control.sock'"
check "mount -o ro" sh -c "'$L' mount --store '$T/a' --listen '127.0.0.1:$(port 0)' -o ro '$T/mnt-a' 2>>'$T/log-a'"
check "ro shows in /proc/mounts" sh -c "grep ' $T/mnt-a ' /proc/mounts | awk '{ print \$4 }' | grep -q '^ro,'"
check "ro mount: files read" [ "$(sha256sum < "$T/mnt-a/dir/sub/f2")" = "$sum_f2" ]
check "ro mount: create is refused" expect 1 "Read-only file system" bash -c "echo x > '$T/mnt-a/new-file'"
check "ro mount: writing a file is refused" expect 1 "Read-only file system" bash -c "echo x >> '$T/mnt-a/dir/sub/f2'"
check "ro mount: mkdir is refused" expect 1 "Read-only file system" mkdir "$T/mnt-a/new-dir"
check "ro mount: unlink is refused" expect 1 "Read-only file system" rm "$T/mnt-a/dir/sub/f2"
check "ro mount: chmod is refused" expect 1 "Read-only file system" chmod 600 "$T/mnt-a/dir/sub/f2"
check "ro mount: rename is refused" expect 1 "Read-only file system" mv "$T/mnt-a/dir/sub/f2" "$T/mnt-a/f2-moved"
check "ro mount: the file is unchanged" [ "$(sha256sum < "$T/mnt-a/dir/sub/f2")" = "$sum_f2" ]
check "peer b mounted read-write" sh -c "'$L' mount --store '$T/b' --listen '127.0.0.1:$(port 1)' '$T/mnt-b' 2>>'$T/log-b'"
echo "from b" > "$T/mnt-b/to-ro.txt"
check "b's new file reaches the ro mount" wait_for 20 grep -q "from b" "$T/mnt-a/to-ro.txt"
"$L" unmount "$T/mnt-a"; "$L" unmount "$T/mnt-b"
wait_for 10 sh -c "! test -e '$T/a/control.sock' && ! test -e '$T/b/control.sock'"
# A peer from another volume is refused, and status says why.
"$L" init --store "$T/other" >/dev/null
"$L" peer add --store "$T/a" "$("$L" id --store "$T/other")" "127.0.0.1:$(port 5)" >/dev/null
"$L" peer add --store "$T/other" "$ida" "127.0.0.1:$(port 0)" >/dev/null
mkdir -p "$T/mnt-o"
"$L" mount --store "$T/a" --listen "127.0.0.1:$(port 0)" "$T/mnt-a" 2>>"$T/log-a"
"$L" mount --store "$T/other" --listen "127.0.0.1:$(port 5)" "$T/mnt-o" 2>>"$T/log-o"
check "status names the last error of a peer from another volume" wait_for 15 sh -c "'$L' status '$T/mnt-a' | grep -q 'last error: .*volume mismatch'"
"$L" unmount "$T/mnt-a"; "$L" unmount "$T/mnt-o"
"$L" peer remove --store "$T/a" "$("$L" id --store "$T/other")" >/dev/null
wait_for 10 sh -c "! test -e '$T/a/control.sock' && ! test -e '$T/other/control.sock'"
# Relative paths: the daemon leaves its working directory once mounted.
check "mount with a relative --store and mountpoint" sh -c "cd '$T' && '$L' mount --store a --offline mnt-h"
check "statfs (df) works on it" sh -c "df '$T/mnt-h' > /dev/null && stat -f '$T/mnt-h' > /dev/null"
check "status names the mountpoint as an absolute path" sh -c "'$L' status '$T/mnt-h' | grep -q 'mounted on:  $T/mnt-h '"
"$L" unmount "$T/mnt-h"
wait_for 10 sh -c "! test -e '$T/a/control.sock'"
# A comma in the store's path is not a mount option; a space, a comma and
# a backslash survive the trip through the mount table to status.
odd="$T/s p\\q,allow_other"
"$L" init --store "$odd" >/dev/null
check "a store path with a space, a backslash and a comma mounts" "$L" mount --store "$odd" --offline "$T/mnt-h"
check "... its comma adds no mount option" sh -c "grep ' $T/mnt-h ' /proc/mounts | awk '{ print \$4 }' | grep -qv allow_other"
check "... and status finds the store from the mount point" sh -c "'$L' status '$T/mnt-h' | grep -qF 'store:       $odd'"
"$L" unmount "$T/mnt-h"
wait_for 10 test ! -e "$odd/control.sock"

# --- landro fsck runs landro-fsck with its own flags ----------------------------
check "landro fsck -n -v checks a store (exit 0, pass statistics)" sh -c "
    '$L' fsck -n -v '$T/a' > '$T/fsck.out' 2>&1 && grep -q '^Pass 6' '$T/fsck.out'"
check "landro fsck on a missing store is an operational error (8)" expect 8 "cannot open store" "$L" fsck -n "$NS"

# --- landro compact gives deleted data's space back ---------------------------
C=$T/c
mkdir -p "$T/mnt-c"
"$L" init --store "$C" >/dev/null
"$L" mount --store "$C" --offline "$T/mnt-c"
mkdir "$T/mnt-c/keep"
for i in $(seq 20); do head -c $((i * 5000)) /dev/urandom > "$T/mnt-c/keep/f$i"; done
head -c 64M /dev/urandom > "$T/mnt-c/big"
sync "$T/mnt-c/big"
rm "$T/mnt-c/big"
tree_listing "$T/mnt-c" > "$T/want"
check "compact refuses a mounted store" expect 1 "store '$C' is in use" "$L" compact --store "$C"
"$L" unmount "$T/mnt-c"
wait_for 10 sh -c "! pgrep -f 'landro mount --store $C ' >/dev/null"
# hold_gate sh|ex: hold landro.lock's first byte as a landro process
# with the store open does (sh) or as a compaction does (ex), until killed.
hold_gate() {
    rm -f "$T/held"
    python3 -c "import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_SH if sys.argv[3] == 'sh' else fcntl.LOCK_EX, 1, 0, 0)
open(sys.argv[2], 'w').close(); time.sleep(30)" "$C/landro.lock" "$T/held" "$1" & holder=$!
    wait_for 10 test -e "$T/held"
}
hold_gate sh
check "compact refuses a store another process has open" expect 1 "is in use" "$L" compact --store "$C"
kill "$holder"; wait "$holder" 2>/dev/null
hold_gate ex
check "a store being compacted cannot be opened meanwhile" expect 1 "is being compacted" "$L" peer list --store "$C"
check "... nor mounted" expect 1 "is being compacted" "$L" mount -f --store "$C" --offline "$T/mnt-c"
kill "$holder"; wait "$holder" 2>/dev/null
before=$(stat -c %s "$C/data.mdb")
check "compact of the unmounted store succeeds" sh -c "'$L' compact --store '$C' | grep -q 'data.mdb .* MiB -> .* MiB'"
after=$(stat -c %s "$C/data.mdb")
check "... and gives the deleted 64 MiB back ($before -> $after bytes)" test $((before - after)) -gt $((60 << 20))
check "... leaving data.mdb private (0600) and no copy behind" sh -c "
    [ \"\$(stat -c %a '$C/data.mdb')\" = 600 ] && [ ! -e '$C/compact.tmp' ]"
check "... and a store landro-fsck finds clean" sh -c "'$TOP/${O:-build}/bin/landro-fsck' -n '$C' > '$T/fsck-c.out' 2>&1"
"$L" mount --store "$C" --offline "$T/mnt-c"
check "... that mounts with every file as before" same_tree c
"$L" unmount "$T/mnt-c"

# --- make install -----------------------------------------------------------
D=$T/dest
if env -u O -u SAN make -s -C "$TOP" install DESTDIR="$D" PREFIX=/usr > "$T/install.log" 2>&1; then
    ok "make install DESTDIR=... PREFIX=/usr"
else
    bad "make install DESTDIR=... PREFIX=/usr: $(tail -5 "$T/install.log")"
fi
(cd "$D" && find . -type f -o -type l | sort) > "$T/installed"
sed 's/^/  installed: /' "$T/installed"
for f in ./usr/bin/landro ./usr/bin/landro-fsck ./usr/share/man/man1/landro.1 ./usr/lib/systemd/system/landro@.service; do
    check "installs $f" grep -qx "$f" "$T/installed"
done
check "test tools are not installed" sh -c "! grep -qE 'landro-(fsck-damage|fsx|passthrough|bench|impair)\$' '$T/installed'"
check "the unit runs the installed binary" grep -q '^ExecStart=/usr/bin/landro mount -f --store' "$D/usr/lib/systemd/system/landro@.service"
check "the man page renders" sh -c "man -l '$D/usr/share/man/man1/landro.1' 2>/dev/null | col -b | grep -q 'STATUS JSON'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
