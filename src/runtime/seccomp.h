// SPDX-License-Identifier: Apache-2.0
// The default seccomp profile of instances and build steps, as the OCI runtime spec's
// `linux.seccomp` object: Docker's default semantics for a container without CAP_SYS_ADMIN.
// Every system call not on the allow-list fails with EPERM; clone may not create namespaces
// (CLONE_NEWUSER above all), clone3 answers ENOSYS so libc falls back to clone, and unshare,
// setns and mount are not allowed at all. Pure data; no I/O.
#pragma once

#include "common/json.h"

namespace berth::runtime {

/// The profile for this build's architecture (x86_64 with its x86 and x32 ABIs, or aarch64
/// with arm). Names this kernel's libseccomp does not know are skipped by runc.
Json default_seccomp_profile();

}  // namespace berth::runtime
