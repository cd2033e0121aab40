# tools/measure-lib.sh - sourced by the tools/measure-*.sh scripts that
# mount landro on their own (not run by itself).
#
# measure_workdir NAME: W becomes a fresh directory /tmp/landro-NAME-XXXXXX;
# at exit the mount at $W/m is detached, any daemon still serving a store
# under $W is stopped, and $W is removed, however the script ends.
measure_workdir() {
    W=$(mktemp -d "/tmp/landro-$1-XXXXXX")
    trap measure_cleanup EXIT
}

measure_cleanup() {
    set +e
    mountpoint -q "$W/m" && fusermount3 -u -z "$W/m"
    pkill -f "landro mount .*--store $W/" 2>/dev/null
    sleep 0.2
    rm -rf "$W"
}
