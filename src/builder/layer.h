// SPDX-License-Identifier: Apache-2.0
// Layer writer (private to the build module): turns a directory tree (a RUN step's overlayfs
// upper dir) or a list of files (a COPY step) into an OCI layer blob, a gzip-compressed tar
// that is byte-identical for equal input:
//   - entries depth-first, each directory's children sorted bytewise by name, so a parent
//     always comes before its children (the order Go's filepath.Walk gives docker/containerd);
//   - POSIX pax (libarchive "pax_restricted"): plain ustar headers, plus a pax extended header
//     only when a field needs one (long path, big id or size, xattrs as SCHILY.xattr.*);
//   - numeric uid/gid, empty uname/gname, mtime in whole seconds (clamped to
//     source_date_epoch when set), no atime/ctime; hardlinks as hardlink entries;
//   - gzip with a fixed header (no name, mtime 0, OS byte 255) written by zlib directly.
// The digest (compressed) and the diff_id (uncompressed) are computed in the same pass; the
// layer streams to a temp file beside out_path that is renamed into place at the end.
// Everything here blocks: call it from the blocking pool.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace berth::builder {

inline constexpr const char* kLayerMediaType = "application/vnd.oci.image.layer.v1.tar+gzip";

struct LayerOptions {
  /// When set, every mtime later than this (seconds since the epoch) becomes this value
  /// (SOURCE_DATE_EPOCH); earlier mtimes are kept.
  std::optional<int64_t> source_date_epoch;
  /// write_layer only: `dir` is an overlayfs upper dir. A character device 0/0 becomes a
  /// regular empty `.wh.NAME` entry (mode 0600, the device's uid/gid and mtime); a directory
  /// with xattr trusted.overlay.opaque=y (or user.overlay.opaque=y) gets an empty
  /// `.wh..wh..opq` entry right after it (the directory's permissions, uid/gid and mtime).
  /// Other trusted.overlay.* / user.overlay.* xattrs are dropped, except that
  /// overlay.metacopy and overlay.redirect fail with Unsupported (the upper dir alone would
  /// not hold the file's data or the directory's origin: mount with metacopy=off and
  /// redirect_dir=off, the kernel defaults).
  bool overlay_upper = false;
  /// zlib level 1..9 (the digest depends on it and on the zlib version; diff_id does not).
  int compression_level = 6;
  /// fsync the blob before the rename and its directory after it.
  bool fsync = true;
};

struct LayerBlob {
  /// True when the layer has no entries: no blob was written (out_path is left untouched)
  /// and digest/diff_id are empty; the builder records history with empty_layer=true.
  bool empty = false;
  std::string digest;   ///< "sha256:<hex>" of the compressed bytes (the blob's name).
  std::string diff_id;  ///< "sha256:<hex>" of the uncompressed tar (the config's rootfs).
  uint64_t size = 0;    ///< Compressed bytes.
  std::string media_type = kLayerMediaType;
  uint64_t entries = 0;  ///< Tar entries written (whiteouts included).
};

/// Tars the tree under `dir` (not `dir` itself: its entries are relative paths such as
/// "etc/", "etc/passwd") into `out_path`. Regular files, directories, symlinks (target as
/// is), hardlinks (the first path in walk order carries the data, later ones are hardlink
/// entries to it), FIFOs and device nodes keep their mode (07777 bits), uid, gid and mtime;
/// xattrs are kept (security.capability, user.*, trusted.*, system.posix_acl_*), except
/// security.selinux, which is the build host's label. Sockets are skipped.
/// Errors: NotFound (dir), InvalidArgument (dir not a directory), Unsupported (see
/// LayerOptions::overlay_upper), DataLoss (a file changed size while it was read), Internal
/// (I/O or libarchive/zlib failures). On error no file is left at out_path or beside it.
Result<LayerBlob> write_layer(const std::string& dir, const std::string& out_path,
                              const LayerOptions& opts);

/// One COPY source: the file, symlink or directory at `source` lands at `dest` in the image.
struct CopyEntry {
  /// Path on disk, read with lstat: a symlink is copied as a symlink (the builder resolves
  /// links it must follow, such as the source operand itself, before calling).
  std::string source;
  /// Absolute (or root-relative) path in the image, e.g. "/app/server.js". Normalised:
  /// "." segments and repeated slashes are removed; ".." is an InvalidArgument.
  std::string dest;
  /// A directory source: also copy everything below it (dest/<relative path>).
  bool recursive = true;
  /// A directory source: copy only what is below it (Docker's `COPY dir /dest`); dest itself
  /// is then handled like a parent directory (kept from base_rootfs, or created).
  bool contents_only = false;
  /// --chown: replaces the owner of everything this entry copies (numeric; the builder
  /// resolves user and group names with the image's /etc/passwd and /etc/group).
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  /// --chmod: replaces the permission bits (07777) of the files and directories this entry
  /// copies (not of symlinks).
  std::optional<uint32_t> mode;
  /// Optional filter for recursive copies (.dockerignore, --exclude): called with the path
  /// relative to `source` ("a/b.txt"); returning false skips it (and, for a directory,
  /// everything under it).
  std::function<bool(const std::string& rel)> include;
};

struct CopyLayerOptions {
  /// The rootfs the layer goes on top of (may be empty or missing). A parent directory of a
  /// dest that exists there as a directory is written with that directory's mode, owner,
  /// mtime and xattrs, so the layer does not change it. Parents missing there are created
  /// with parent_mode and the owner of the entry that needs them (its --chown, else 0:0).
  std::string base_rootfs;
  /// For a rootfs made of several unpacked layers (which base_rootfs cannot name): returns
  /// the path on disk of the directory `rel` ("usr/local", no leading slash) as the image so
  /// far has it (the topmost layer's copy), or "" when it is not a directory there. Used
  /// instead of base_rootfs when set.
  std::function<std::string(const std::string& rel)> base_dir;
  uint32_t parent_mode = 0755;
};

/// Writes a COPY layer: the entries in order (a later entry that lands on the same path
/// replaces an earlier one, as copying them in order would), plus the parent directories
/// their dest paths need, in the same order and format as write_layer. Hardlinks between
/// sources are written as independent files (each may have its own --chown/--chmod).
/// mtimes: the source's, clamped by opts.source_date_epoch; created parents get
/// source_date_epoch, or 0 when it is unset. opts.overlay_upper is ignored.
/// Errors: NotFound (a source), InvalidArgument (a bad dest, or a dest below a
/// non-directory entry of this layer), plus those of write_layer.
Result<LayerBlob> write_copy_layer(const std::vector<CopyEntry>& entries,
                                   const std::string& out_path, const LayerOptions& opts,
                                   const CopyLayerOptions& copy = {});

}  // namespace berth::builder
