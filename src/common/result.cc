// SPDX-License-Identifier: Apache-2.0
#include "common/result.h"

namespace berth {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::Ok:
      return "ok";
    case Errc::InvalidArgument:
      return "invalid_argument";
    case Errc::NotFound:
      return "not_found";
    case Errc::AlreadyExists:
      return "already_exists";
    case Errc::FailedPrecondition:
      return "failed_precondition";
    case Errc::Conflict:
      return "conflict";
    case Errc::Unauthenticated:
      return "unauthenticated";
    case Errc::PermissionDenied:
      return "permission_denied";
    case Errc::ResourceExhausted:
      return "resource_exhausted";
    case Errc::Unavailable:
      return "unavailable";
    case Errc::DeadlineExceeded:
      return "deadline_exceeded";
    case Errc::Cancelled:
      return "cancelled";
    case Errc::Unsupported:
      return "unsupported";
    case Errc::DataLoss:
      return "data_loss";
    case Errc::NoSpace:
      return "no_space";
    case Errc::Internal:
      return "internal";
  }
  return "unknown";
}

}  // namespace berth
