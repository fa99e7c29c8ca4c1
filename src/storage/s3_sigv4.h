// SPDX-License-Identifier: Apache-2.0
// Private to src/storage: SigV4 header signing done here (s3_presign.cc) for the requests
// libcurl 7.88 signs wrong. libcurl sorts the canonical headers as whole "name:value" lines, so
// a header whose name extends another's (x-amz-copy-source-range after x-amz-copy-source) goes
// first, where SigV4 sorts by name; S3 and RGW then answer SignatureDoesNotMatch (curl PR 14370,
// fixed in 8.10). UploadPartCopy needs exactly that pair.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "storage/s3.h"

namespace berth::storage::detail {

/// SigV4's X-Amz-Date ("20130524T000000Z") for a unix time.
std::string sigv4_date(int64_t unix_time);

/// The Authorization header's value for a request: method, the path and query as sent
/// (encoded, the query's parameters in byte order already), every header to sign (lower-case
/// names, values trimmed; host, x-amz-content-sha256 and x-amz-date among them; sorted here by
/// name), the payload hash, and the X-Amz-Date the request carries.
std::string sigv4_authorization(const S3Options& o, const std::string& method,
                                const std::string& path, const std::string& query,
                                std::vector<std::pair<std::string, std::string>> headers,
                                const std::string& payload_hash, const std::string& amz_date);

}  // namespace berth::storage::detail
