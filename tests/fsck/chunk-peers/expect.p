Pass 1: store environment and meta
Pass 2: chunk bytes
Pass 3: extents
Pass 4: chunk references
CHUNK_PEERS: chunkref 131cfbbd674db47b counts 5 peers holding the chunk, holder records: 2.
  Set the count to 2? yes
CHUNK_PEERS: chunkref 3d0bc85e46014dc8 counts 1 peers holding the chunk, holder records: 0.
  Set the count to 0? yes
Pass 5: inodes, names and link counts
Pass 6: change log and peers
STORE: 10 inodes, 10 names, 20 extents, 15 chunks (15 local), 15 log records, 1 peers
STORE: 2 problems fixed, 0 left, 0 notes

***** STORE WAS MODIFIED *****
exit 1
