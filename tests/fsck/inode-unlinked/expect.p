Pass 1: store environment and meta
Pass 2: chunk bytes
Pass 3: extents
Pass 4: chunk references
Pass 5: inodes, names and link counts
INODE_UNLINKED: inode 8 has no name and link count 0 (unlinked while in use, then a crash).
  Delete it? yes
Pass 6: change log and peers
STORE: 9 inodes, 9 names, 20 extents, 15 chunks (15 local), 15 log records, 1 peers
STORE: 1 problems fixed, 0 left, 0 notes

***** STORE WAS MODIFIED *****
exit 1
