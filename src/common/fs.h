// SPDX-License-Identifier: Apache-2.0
// Crash-safe file helpers. Blocking: call from the blocking pool on request paths.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::fs {

namespace stdfs = std::filesystem;

/// Writes bytes to a temp file beside path, fsyncs it, renames it over path and fsyncs the
/// directory: a crash leaves the old or the new content, never a mix.
Status write_atomic(const stdfs::path& path, std::string_view bytes, int mode = 0644);

/// Reads a whole (small) file.
Result<std::string> read_file(const stdfs::path& path);

/// Reads a file that untrusted input controls (a Dockerfile, .dockerignore or buildspec.yml
/// from a commit): refuses a symlink as the last component, anything but a regular file (a
/// FIFO is never waited on) and a file over max_bytes, with InvalidArgument naming it as
/// `name` ("buildspec.yml is a symlink; it must be a regular file"). NotFound when absent.
Result<std::string> read_regular_file(const std::string& path, uint64_t max_bytes,
                                      const std::string& name);

/// The names in a directory ("." and ".." left out), sorted bytewise. NotFound when it is
/// absent; Internal ("opendir DIR: ...", "readdir DIR: ...") otherwise.
Result<std::vector<std::string>> list_dir(const std::string& dir);

/// The error errno describes, about `what` on path p: NotFound (ENOENT), NoSpace (ENOSPC,
/// EDQUOT) or Internal. The message names the path: it is for the log.
Error errno_error(const std::string& what, const stdfs::path& p);

/// fsync of a file or directory by path.
Status fsync_path(const stdfs::path& path);

/// mkdir -p that reports the failing path.
Status make_dirs(const stdfs::path& dir);

/// A random lowercase hex string of 2*n characters from the OS CSPRNG.
std::string random_hex(size_t n);

/// An RFC 4122 version-4 UUID string.
std::string random_uuid();

}  // namespace berth::fs
