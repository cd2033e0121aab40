Pass 1: store environment and meta
Pass 2: chunk bytes
CHUNK_HASH: chunk b1f0f6291743eeee (68891 bytes) does not hash to its name.
  Remove the bytes and mark the chunk not local (a read fetches it from a peer)? yes
Pass 3: extents
Pass 4: chunk references
Pass 5: inodes, names and link counts
Pass 6: change log and peers
STORE: 10 inodes, 10 names, 20 extents, 15 chunks (14 local), 15 log records, 1 peers
STORE: 1 problems fixed, 0 left, 0 notes

***** STORE WAS MODIFIED *****
exit 1
