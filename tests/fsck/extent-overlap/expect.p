Pass 1: store environment and meta
Pass 2: chunk bytes
Pass 3: extents
EXTENT_OVERLAP: extent of inode 5 at offset 139970 overlaps the one at offset 68210.
  Remove it? no (UNEXPECTED INCONSISTENCY: run landro-fsck -y)
Pass 4: chunk references
REFCOUNT: chunk b1f0f6291743eeee has refcount 2, extents naming it: 1.
  Set the refcount to 1? yes
Pass 5: inodes, names and link counts
Pass 6: change log and peers
STORE: 10 inodes, 10 names, 19 extents, 15 chunks (15 local), 15 log records, 1 peers
STORE: 1 problems fixed, 1 left, 0 notes

***** STORE WAS MODIFIED *****
exit 5
