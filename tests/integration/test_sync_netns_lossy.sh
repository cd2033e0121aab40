#!/usr/bin/env bash
# test_sync_netns_lossy.sh - test_sync_netns.sh on a worse path: 3 % of
# the datagrams lost each way (20 ms held), and a 256 MiB file read on B.
# On such a link a connection's BBR window shrinks to a few KB
# (docs/PERFORMANCE.md, "Random loss and BBR"); the mount must still read
# the whole file, correct, without an EIO: a reader that joins a
# read-ahead fetch keeps its own bound (fs/sync.c, inflight_retry) and
# chunk requests spread over a pool of connections per peer. Before those
# two, this read failed with EIO after about 20 s.
set -uo pipefail
cd "$(dirname "$0")"
LOSS_PCT=${LOSS_PCT:-3} BIG_MIB=${BIG_MIB:-256} BIG_READ_S=${BIG_READ_S:-200} WATCHDOG=${WATCHDOG:-330} \
    exec bash ./test_sync_netns.sh
