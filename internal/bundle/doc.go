// Package bundle extracts application bundles safely.
//
// # Format
//
// An application bundle is a POSIX tar archive (ustar, PAX or GNU headers)
// holding the files of one module, optionally compressed with gzip. The
// compression is detected from the first two bytes (1f 8b); anything else
// is read as plain tar. Entry names are slash-separated and relative; a
// leading "./" and "." components are ignored, so "./bin/app" and
// "bin/app" name the same file.
//
// Accepted entry types:
//
//	regular file  written with mode (header mode & 0755) | 0400
//	directory     created with mode 0755; parents are created implicitly
//	symlink       target relative, of the form ("../")* name ("/" name)*,
//	              and its leading ".." may not climb above the bundle root
//	hard link     only to a regular file written earlier in the same bundle
//	PAX global    ignored (counted as an entry)
//
// Everything else is refused with an [UnsafeEntryError] wrapping
// [ErrUnsafeEntry]: ".." components, absolute names, names that are not
// valid UTF-8 or hold NUL or a backslash, symlinks that escape the root,
// hard links to anything but an earlier regular file, device nodes, FIFOs,
// sparse and other entry types, a path that appears twice, and an entry
// whose path goes through an earlier symlink or file.
//
// Sizes are bounded by [Limits]: the number of entries, the bytes of each
// file, the bytes of all files, the length and depth of names, and the
// decompressed bytes of the whole tar stream (file bytes plus a bounded
// per-entry allowance for headers), which defeats decompression bombs and
// endless trailers. A limit that is hit yields a [LimitError] wrapping
// [ErrLimit].
//
// Extraction goes through an [os.Root] opened on the destination, which
// must be a new or empty directory. Every file is fsynced after it is
// written and every directory once extraction is done. On error the
// destination holds a partial tree: extract into a staging directory and
// remove it on failure.
package bundle
