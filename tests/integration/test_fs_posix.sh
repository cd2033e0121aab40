#!/usr/bin/env bash
# test_fs_posix.sh - a real landro mount under /tmp driven by ordinary
# tools: cp -a + diff, tar, git, rsync, sqlite3, links, renames,
# permissions as another user, long names, sparse and >4 GiB files, mmap,
# locks, xattrs, unlinked-but-open files, remount, clean shutdown.
. "$(dirname "$0")/test_fs_lib.sh"
T="timeout 120"

fs_init || { bad "landro init"; fs_finish; exit 1; }
ok "landro init creates a store"
check "mount" fs_mount -o allow_other
cd "$work" || exit 1

# --- trees ------------------------------------------------------------------
src=$work/src
mkdir -p "$src"
cp -a /usr/include/linux "$src/linux"
(cd "$top" && git ls-files -z store fs tools tests Makefile 2>/dev/null | xargs -0 cp -a --parents -t "$src") 2>/dev/null
check "cp -a of a source tree" $T cp -a "$src" "$mnt/tree"
check "diff -r after cp -a" $T diff -r "$src" "$mnt/tree"
check "tar into the mount" bash -c "$T tar -C '$src' -cf - . | $T tar -C '$mnt' -xf - --one-top-level=tarred"
mkdir -p "$work/untar"
check "tar out of the mount" bash -c "$T tar -C '$mnt/tarred' -cf - . | $T tar -C '$work/untar' -xf -"
check "diff -r after tar round trip" $T diff -r "$src" "$work/untar"
check "rsync -a in" $T rsync -a "$src/" "$mnt/rs/"
check "rsync -a out" $T rsync -a "$mnt/rs/" "$work/rsout/"
check "diff -r after rsync round trip" $T diff -r "$src" "$work/rsout"
check "rsync --checksum finds nothing to do" bash -c "[ -z \"\$($T rsync -a --checksum -i '$src/' '$mnt/rs/')\" ]"
check "mtimes preserved by cp -a" bash -c "[ \"\$(stat -c %Y '$src/linux/fs.h')\" = \"\$(stat -c %Y '$mnt/tree/linux/fs.h')\" ]"

# --- git --------------------------------------------------------------------
gitrun() { $T git -C "$mnt/repo" -c user.name=t -c user.email=t@e -c init.defaultBranch=main "$@"; }
mkdir "$mnt/repo" && cp -a "$src/linux" "$mnt/repo/"
check "git init" gitrun init -q
check "git add" gitrun add -A
check "git commit" gitrun commit -q -m first
echo change >> "$mnt/repo/linux/fs.h"
check "git commit -a" gitrun commit -q -a -m second
check "git log shows two commits" bash -c "[ \"\$(git -C '$mnt/repo' log --oneline | wc -l)\" = 2 ]"
check "git fsck" bash -c "git -C '$mnt/repo' fsck --strict >/dev/null 2>&1"
check "git clone out of the mount" $T git clone -q "$mnt/repo" "$work/clone"
check "clone has the change" bash -c "tail -n1 '$work/clone/linux/fs.h' | grep -qx change"

# --- sqlite3 -----------------------------------------------------------------
db=$mnt/t.db
check "sqlite3 create and insert" bash -c "{ echo 'create table t(a integer primary key, b text); begin;'
  for i in \$(seq 2000); do echo \"insert into t(b) values('row \$i \$(printf %0100d \$i)');\"; done
  echo 'commit;'; } | $T sqlite3 '$db'"
check "sqlite3 query" bash -c "[ \"\$($T sqlite3 '$db' 'select count(*), sum(a) from t')\" = '2000|2001000' ]"
check "sqlite3 update in WAL mode" $T sqlite3 "$db" "pragma journal_mode=wal; update t set b = 'x' where a % 2 = 0;"
check "sqlite3 integrity_check" bash -c "[ \"\$($T sqlite3 '$db' 'pragma integrity_check')\" = ok ]"

# --- links and renames ---------------------------------------------------------
echo hello > "$mnt/f"
ln "$mnt/f" "$mnt/f2"
check "hard link count 2" bash -c "[ \"\$(stat -c %h '$mnt/f')\" = 2 ]"
check "hard links share the inode" bash -c "[ \"\$(stat -c %i '$mnt/f')\" = \"\$(stat -c %i '$mnt/f2')\" ]"
echo more >> "$mnt/f2"
check "write through one link, read through the other" bash -c "[ \"\$(cat '$mnt/f')\" = \$'hello\nmore' ]"
rm "$mnt/f"
check "content survives unlink of the other link" bash -c "[ \"\$(cat '$mnt/f2')\" = \$'hello\nmore' ] && [ \"\$(stat -c %h '$mnt/f2')\" = 1 ]"
ln -s f2 "$mnt/sl"
check "symlink" bash -c "[ \"\$(readlink '$mnt/sl')\" = f2 ] && [ \"\$(head -n1 '$mnt/sl')\" = hello ]"
long=$(printf 'x%.0s' $(seq 3000))
check "long symlink target" bash -c "ln -s '$long' '$mnt/sl2' && [ \"\$(readlink '$mnt/sl2')\" = '$long' ]"
mkdir -p "$mnt/a/b" "$mnt/c"
echo one > "$mnt/a/b/x"; echo two > "$mnt/c/y"
check "rename across directories" bash -c "mv '$mnt/a/b/x' '$mnt/c/x' && [ \"\$(cat '$mnt/c/x')\" = one ] && [ ! -e '$mnt/a/b/x' ]"
check "rename over an existing file" bash -c "mv -f '$mnt/c/x' '$mnt/c/y' && [ \"\$(cat '$mnt/c/y')\" = one ] && [ ! -e '$mnt/c/x' ]"
check "rename a directory across parents" bash -c "mv '$mnt/a/b' '$mnt/c/b' && [ -d '$mnt/c/b' ] && [ \"\$(stat -c %h '$mnt/a')\" = 2 ] && [ \"\$(stat -c %h '$mnt/c')\" = 3 ]"
check_fails "rename a directory into itself fails" mv "$mnt/c" "$mnt/c/b/inside" 2>/dev/null
mkdir "$mnt/empty"
check "rename a directory over an empty one" bash -c "mv -T '$mnt/c/b' '$mnt/empty' && [ -d '$mnt/empty' ] && [ ! -e '$mnt/c/b' ]"
mkdir -p "$mnt/full/sub"
check_fails "rename over a non-empty directory fails" mv -T "$mnt/a" "$mnt/full" 2>/dev/null
renameat2() { $PY - "$@" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT = -100
r = libc.renameat2(AT, sys.argv[1].encode(), AT, sys.argv[2].encode(), int(sys.argv[3]))
sys.exit(0 if r == 0 else ctypes.get_errno())
PY
}
echo A > "$mnt/xa"; echo B > "$mnt/xb"
check "RENAME_EXCHANGE swaps" bash -c "$(declare -f renameat2); PY=$PY; renameat2 '$mnt/xa' '$mnt/xb' 2 && [ \"\$(cat '$mnt/xa')\" = B ] && [ \"\$(cat '$mnt/xb')\" = A ]"
renameat2 "$mnt/xa" "$mnt/xb" 1; rc=$?
check "RENAME_NOREPLACE refuses with EEXIST" [ "$rc" = 17 ]
renameat2 "$mnt/xa" "$mnt/xnew" 1; rc=$?
check "RENAME_NOREPLACE to a new name works" [ "$rc" = 0 -a -e "$mnt/xnew" ]

# --- unlinked but open -----------------------------------------------------------
used_inodes() { df --output=iused "$mnt" | tail -n1 | tr -d ' '; }
before=$(used_inodes)
check "unlinked file stays readable and writable while open" $PY - "$mnt/open" <<'PY'
import os, sys
p = sys.argv[1]
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"a" * 100000)
os.fsync(fd)
os.unlink(p)
assert not os.path.exists(p)
os.pwrite(fd, b"tail", 100000)
assert os.pread(fd, 100004, 0) == b"a" * 100000 + b"tail"
os.close(fd)
PY
sleep 1.5   # entry timeout: let the kernel forget the inode
check "unlinked file deleted once closed and forgotten" bash -c "[ \"\$(df --output=iused '$mnt' | tail -n1 | tr -d ' ')\" -le $before ]"

# --- permissions as another user --------------------------------------------------
as_nobody() { setpriv --reuid nobody --regid nogroup --clear-groups "$@"; }
as_daemon() { setpriv --reuid daemon --regid daemon --clear-groups "$@"; }
mkdir "$mnt/pub" && chmod 1777 "$mnt/pub"
check "nobody creates a file" as_nobody touch "$mnt/pub/n"
check "new file belongs to the caller" bash -c "[ \"\$(stat -c %U:%G '$mnt/pub/n')\" = nobody:nogroup ]"
check "nobody chmods its file" bash -c "setpriv --reuid nobody --regid nogroup --clear-groups chmod 640 '$mnt/pub/n' && [ \"\$(stat -c %a '$mnt/pub/n')\" = 640 ]"
check "nobody sets times (utimes)" bash -c "setpriv --reuid nobody --regid nogroup --clear-groups touch -d '2001-02-03 04:05:06 UTC' '$mnt/pub/n' && [ \"\$(stat -c %Y '$mnt/pub/n')\" = 981173106 ]"
check_fails "nobody cannot chown to root" as_nobody chown root "$mnt/pub/n" 2>/dev/null
check "root chowns" bash -c "chown daemon:daemon '$mnt/pub/n' && [ \"\$(stat -c %U:%G '$mnt/pub/n')\" = daemon:daemon ]"
chown nobody:nogroup "$mnt/pub/n"; chmod 644 "$mnt/pub/n"
check_fails "sticky bit: daemon cannot delete nobody's file" as_daemon rm -f "$mnt/pub/n" 2>/dev/null
check_fails "nobody cannot write root's 0644 file" as_nobody bash -c "echo x >> '$mnt/f2'" 2>/dev/null
check_fails "nobody cannot read root's 0600 file" bash -c "chmod 600 '$mnt/f2'; setpriv --reuid nobody --regid nogroup --clear-groups cat '$mnt/f2'" 2>/dev/null
mkdir "$mnt/sg" && chgrp users "$mnt/sg" && chmod 2777 "$mnt/sg"
as_nobody touch "$mnt/sg/file"; as_nobody mkdir "$mnt/sg/dir"
check "setgid directory passes its group" bash -c "[ \"\$(stat -c %G '$mnt/sg/file')\" = users ] && [ \"\$(stat -c %G '$mnt/sg/dir')\" = users ]"
check "setgid directory passes S_ISGID to subdirectories" bash -c "[ -g '$mnt/sg/dir' ] && [ ! -g '$mnt/sg/file' ]"

# --- names and paths ---------------------------------------------------------------
n255=$(printf 'n%.0s' $(seq 255)); n256=${n255}n
check "255-byte name" bash -c "echo z > '$mnt/$n255' && [ \"\$(cat '$mnt/$n255')\" = z ] && ls '$mnt' | grep -qx '$n255'"
check_fails "256-byte name is refused" bash -c "touch '$mnt/$n256'" 2>/dev/null
deep=$mnt/deep; comp=$(printf 'd%.0s' $(seq 200))
while [ $(( ${#deep} + 202 )) -lt 4000 ]; do deep=$deep/$comp; done
check "path near PATH_MAX" bash -c "mkdir -p '$deep' && echo deep > '$deep/f' && [ \"\$(cat '$deep/f')\" = deep ] && [ \$(echo -n '$deep/f' | wc -c) -gt 3700 ]"

# --- special files, xattrs ------------------------------------------------------------
check "mkfifo" bash -c "mkfifo '$mnt/fifo' && [ -p '$mnt/fifo' ]"
check "mknod char device" bash -c "mknod '$mnt/null' c 1 3 && [ \"\$(stat -c %t:%T '$mnt/null')\" = 1:3 ]"
check "setfattr/getfattr" bash -c "setfattr -n user.k -v hello '$mnt/f2' && [ \"\$(getfattr --only-values -n user.k '$mnt/f2')\" = hello ]"
check "listxattr" bash -c "setfattr -n user.k2 -v x '$mnt/f2' && getfattr -d '$mnt/f2' | grep -q 'user.k2=\"x\"'"
check "removexattr" bash -c "setfattr -x user.k '$mnt/f2' && ! getfattr -n user.k '$mnt/f2' 2>/dev/null"

# --- sizes: empty, sparse, > 4 GiB, truncate, fallocate ---------------------------------
check "empty file" bash -c ": > '$mnt/empty0' && [ \"\$(stat -c %s '$mnt/empty0')\" = 0 ] && [ -z \"\$(cat '$mnt/empty0')\" ]"
check "sparse file > 4 GiB" bash -c "dd if=/dev/urandom of='$work/blk' bs=64k count=16 status=none &&
  dd if='$work/blk' of='$mnt/big' bs=64k seek=\$(( (5 << 30) / 65536 )) status=none &&
  [ \"\$(stat -c %s '$mnt/big')\" = \$(( (5 << 30) + (1 << 20) )) ] &&
  cmp <(dd if='$mnt/big' bs=64k skip=\$(( (5 << 30) / 65536 )) status=none) '$work/blk' &&
  cmp <(dd if='$mnt/big' bs=1M skip=4000 count=8 status=none) <(head -c 8M /dev/zero)"
check "truncate shrink and grow" bash -c "printf 0123456789 > '$mnt/tr' && truncate -s 4 '$mnt/tr' && truncate -s 8 '$mnt/tr' &&
  [ \"\$(od -An -c '$mnt/tr' | tr -d ' ')\" = '0123\\0\\0\\0\\0' ]"
check "fallocate extends" bash -c "fallocate -l 1M '$mnt/fa' && [ \"\$(stat -c %s '$mnt/fa')\" = 1048576 ]"
check "fallocate --keep-size" bash -c "fallocate -n -l 4M '$mnt/fa' && [ \"\$(stat -c %s '$mnt/fa')\" = 1048576 ]"
check "fallocate --punch-hole" bash -c "head -c 300000 /dev/urandom > '$mnt/ph' && cp '$mnt/ph' '$work/ph' &&
  fallocate -p -o 100000 -l 50000 '$mnt/ph' && dd if=/dev/zero of='$work/ph' bs=1 seek=100000 count=50000 conv=notrunc status=none &&
  cmp '$mnt/ph' '$work/ph'"

check "holes: st_blocks counts data only, SEEK_DATA/SEEK_HOLE find them, staged or not" $PY - "$mnt/holes" <<'PY'
import os, sys
p = sys.argv[1]
M = 1 << 20
fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
os.pwrite(fd, os.urandom(4096), 0)
os.pwrite(fd, os.urandom(300000), 10 * M)
assert os.fstat(fd).st_blocks == (4096 + 300000 + 511) // 512  # staged, not yet extents
os.ftruncate(fd, 20 * M)
def check(fd):
    D, H = os.SEEK_DATA, os.SEEK_HOLE
    assert os.lseek(fd, 0, D) == 0 and os.lseek(fd, 0, H) == 4096
    assert os.lseek(fd, 4096, D) == 10 * M and os.lseek(fd, 5000, H) == 5000
    assert os.lseek(fd, 10 * M + 5, H) == 10 * M + 300000
    assert os.lseek(fd, 20 * M - 1, H) == 20 * M - 1
    for off, w in ((10 * M + 300000, D), (20 * M, H), (20 * M, D)):
        try:
            os.lseek(fd, off, w)
            raise AssertionError("no ENXIO at %d" % off)
        except OSError as e:
            assert e.errno == 6, e
check(fd)  # while the writes are still staged
os.close(fd)
fd = os.open(p, os.O_RDONLY)
check(fd)
st = os.stat(p)
assert st.st_size == 20 * M and st.st_blocks == (4096 + 300000 + 511) // 512, st.st_blocks
PY
check "cp --sparse and du see the holes of a landro file" bash -c "cp --sparse=always '$mnt/holes' '$work/holes' &&
  cmp '$mnt/holes' '$work/holes' && [ \$(du -k '$work/holes' | cut -f1) -lt 1024 ] && [ \$(du -k '$mnt/holes' | cut -f1) -lt 1024 ] &&
  cp --sparse=always '$work/holes' '$mnt/holes2' && cmp '$mnt/holes2' '$work/holes' && [ \$(du -k '$mnt/holes2' | cut -f1) -lt 1024 ]"

# --- mmap, locks -------------------------------------------------------------------------
check "mmap write and read" $PY - "$mnt/mm" <<'PY'
import mmap, os, sys
p = sys.argv[1]
with open(p, "wb") as f:
    f.truncate(1 << 20)
with open(p, "r+b") as f:
    m = mmap.mmap(f.fileno(), 1 << 20)
    for i in range(0, 1 << 20, 4096):
        m[i:i + 8] = i.to_bytes(8, "little")
    m.flush()
    m.close()
with open(p, "rb") as f:
    d = f.read()
assert len(d) == 1 << 20
for i in range(0, 1 << 20, 4096):
    assert d[i:i + 8] == i.to_bytes(8, "little"), i
PY
check "flock excludes a second locker" bash -c "touch '$mnt/lk'; flock '$mnt/lk' sleep 2 & sleep 0.5; ! flock -w 0.5 '$mnt/lk' true; wait"
check "POSIX lock excludes another process" $PY - "$mnt/lk" <<'PY'
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
pid = os.fork()
if pid == 0:
    fd2 = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os._exit(1)
    except OSError:
        os._exit(0)
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
PY
check "a process blocked on a lock is killable" bash -c "flock '$mnt/lk' sleep 3 & sleep 0.3; flock '$mnt/lk' true & w=\$!; sleep 0.3; kill -9 \$w; sleep 0.3; ! kill -0 \$w 2>/dev/null; wait"
check "statfs gives real figures" bash -c "[ \"\$(stat -f -c %b '$mnt')\" -gt 0 ] && [ \"\$(stat -f -c %l '$mnt')\" = 255 ]"
check "read-ahead window raised to 4 MiB (kernel default 128 KiB)" \
    wait_until 5 bash -c "[ \"\$(cat /sys/class/bdi/\$(mountpoint -d '$mnt')/read_ahead_kb)\" = 4096 ]"

# --- many small files: open/read/close races release against the read's reply
check "3000 small files written, read back and removed" $PY - "$mnt/many" <<'PY'
import os, sys
d = sys.argv[1]
os.mkdir(d)
for i in range(3000):
    with open("%s/f%d" % (d, i), "wb") as f:
        f.write(b"%d" % i * 100)
for rep in range(2):
    for i in range(3000):
        fd = os.open("%s/f%d" % (d, i), os.O_RDONLY)
        got = os.read(fd, 65536)
        os.close(fd)
        assert got == b"%d" % i * 100, i
for i in range(3000):
    os.unlink("%s/f%d" % (d, i))
os.rmdir(d)
PY
check "daemon alive after the small-file churn" kill -0 "$daemon_pid"

# --- remount keeps everything --------------------------------------------------------------
(cd "$mnt" && find . -path ./deep -prune -o -type f -not -name fifo -print0 | sort -z | xargs -0 md5sum) > "$work/sums1" 2>/dev/null
(cd "$mnt" && find . -path ./deep -prune -o -printf '%p %m %U %G %s %b %T@ %y\n' | sort) > "$work/meta1"
check "unmount (daemon exits 0)" fs_unmount
check "remount" fs_mount -o allow_other
(cd "$mnt" && find . -path ./deep -prune -o -type f -not -name fifo -print0 | sort -z | xargs -0 md5sum) > "$work/sums2" 2>/dev/null
(cd "$mnt" && find . -path ./deep -prune -o -printf '%p %m %U %G %s %b %T@ %y\n' | sort) > "$work/meta2"
check "contents equal after remount" cmp "$work/sums1" "$work/sums2"
check "metadata equal after remount" cmp "$work/meta1" "$work/meta2"
check "git still fine after remount" bash -c "git -C '$mnt/repo' fsck --strict >/dev/null 2>&1 && [ \"\$(git -C '$mnt/repo' log --oneline | wc -l)\" = 2 ]"

# --- errors ------------------------------------------------------------------------------------
out=$("$LANDRO" mount -f --store "$store" "$mnt" 2>&1); rc=$?
check "mounting a store in use fails clearly" bash -c "[ $rc != 0 ] && grep -q 'already mounted\|in use' <<<'$out'"
out=$("$LANDRO" mount --store "$work/nostore" "$work" 2>&1); rc=$?
check "missing store: clear message, non-zero exit" bash -c "[ $rc != 0 ] && grep -q \"cannot open store '$work/nostore'\" <<<\"\$0\"" "$out"
out=$("$LANDRO" mount --store "$store" "$work/nomnt" 2>&1); rc=$?
check "nonexistent mountpoint: clear message, non-zero exit" bash -c "[ $rc != 0 ] && grep -q \"cannot mount on '$work/nomnt'\" <<<\"\$0\"" "$out"
"$LANDRO" init --store "$work/store2" >/dev/null
out=$("$LANDRO" mount --store "$work/store2" "$mnt" 2>&1); rc=$?
check "busy mountpoint: clear message, non-zero exit" bash -c "[ $rc != 0 ] && grep -q 'already mounted there' <<<\"\$0\"" "$out"
mkdir -p "$work/bad"; head -c 100000 /dev/urandom > "$work/bad/data.mdb"
out=$("$LANDRO" mount --store "$work/bad" "$work/untar" 2>&1); rc=$?
check "corrupt store: clear message, non-zero exit" bash -c "[ $rc != 0 ] && grep -q \"cannot open store '$work/bad'\" <<<\"\$0\"" "$out"
check "--help" bash -c "'$LANDRO' mount --help | grep -q usage && '$LANDRO' init --help | grep -q usage && '$LANDRO' unmount --help | grep -q usage"

# --- SIGTERM and daemon mode --------------------------------------------------------------------
cd "$work"
kill -TERM "$daemon_pid"
check "SIGTERM: daemon unmounts and exits 0" bash -c "for i in \$(seq 100); do kill -0 $daemon_pid 2>/dev/null || break; sleep 0.1; done; ! mountpoint -q '$mnt'"
wait "$daemon_pid"; rc=$?; daemon_pid=
check "SIGTERM exit status 0" [ "$rc" = 0 ]
check "daemon mode: landro mount returns once mounted" bash -c "'$LANDRO' mount --store '$store' '$mnt' && mountpoint -q '$mnt' && [ -f '$mnt/f2' ]"
daemon_pid=$(pgrep -f "landro mount --store $store $mnt" | head -n1)
check "landro unmount" "$LANDRO" unmount "$mnt"
check "detached daemon exits after unmount" wait_until 10 bash -c "! kill -0 ${daemon_pid:-0} 2>/dev/null"
daemon_pid=

fs_finish
