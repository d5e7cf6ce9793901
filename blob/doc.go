// Package blob stores opaque files by key: the proof-of-delivery photos
// and signatures (package pod) and whatever else needs bytes kept beside
// Redis and the archive. Store is deliberately small — Put, Get, Delete —
// so an object store (S3, GCS, MinIO) can slot in later as another
// implementation with no change to its users: keys are slash-separated
// segments, each object carries one content type, and a Put replaces an
// object whole or not at all.
//
// Disk is the default: a directory on the node (the server's
// <data-dir>/pod). A Put streams to a temporary file in the object's
// directory, fsyncs it, renames it into place and fsyncs the directory, so
// a reader sees the old object or the new one, never a part; a Put whose
// reader fails (an upload over its size limit, a client gone) leaves
// nothing behind. Keys are validated (ValidKey) before any path is built:
// no "..", no absolute paths, no backslashes, every segment starting with
// a letter or digit, so a key can never name a file outside the directory
// nor one of the temporary files. Several nodes share blobs only through a
// shared directory (NFS, a volume) or, later, an object store.
//
// blob imports only the standard library; it must not import any other
// hextrack package.
package blob
